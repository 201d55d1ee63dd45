/* bs-router.h: method + path-template routing ("/v1/books/{id}"). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BsRequest BsRequest;
typedef struct _BsRouter BsRouter;
typedef struct _BsRoute BsRoute;

typedef void (*BsRouteHandler) (BsRequest *request, gpointer user_data);

typedef enum
{
  BS_ROUTE_FOUND,
  BS_ROUTE_NOT_FOUND,
  BS_ROUTE_METHOD_NOT_ALLOWED,
} BsRouteMatch;

BsRouter *bs_router_new (void);
void bs_router_free (BsRouter *router);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsRouter, bs_router_free)

/* @path_template: literal segments and "{name}" segments. A GET route also
 * answers HEAD. */
void bs_router_add (BsRouter *router, const char *method, const char *path_template,
                    BsRouteHandler handler, gpointer user_data);

/* On BS_ROUTE_FOUND, *@route is set and *@params (name → value) is a new
 * table. On BS_ROUTE_METHOD_NOT_ALLOWED, *@route is the first route of that
 * path (for its template; do not invoke it) and *@allow lists the methods the path
 * takes ("GET, HEAD, PUT"). */
BsRouteMatch bs_router_match (BsRouter *router, const char *method, const char *path,
                              const BsRoute **route, GHashTable **params, char **allow);

/* Calls @func for each route added, in the order they were added. */
typedef void (*BsRouteFunc) (const char *method, const char *path_template, gpointer user_data);
void bs_router_foreach (BsRouter *router, BsRouteFunc func, gpointer user_data);

const char *bs_route_get_template (const BsRoute *route);
void bs_route_invoke (const BsRoute *route, BsRequest *request);

G_END_DECLS
