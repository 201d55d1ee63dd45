/* bs-router.c: a list of routes, matched segment by segment. */
#include "bs-router.h"

#include <string.h>

struct _BsRoute
{
  char *method;
  char *path_template;
  char **segments; /* template split on '/', without the leading empty one */
  BsRouteHandler handler;
  gpointer user_data;
};

struct _BsRouter
{
  GPtrArray *routes; /* BsRoute */
};

static void
route_free (gpointer data)
{
  BsRoute *route = data;

  g_free (route->method);
  g_free (route->path_template);
  g_strfreev (route->segments);
  g_free (route);
}

BsRouter *
bs_router_new (void)
{
  BsRouter *router = g_new0 (BsRouter, 1);

  router->routes = g_ptr_array_new_with_free_func (route_free);
  return router;
}

void
bs_router_free (BsRouter *router)
{
  if (router == NULL)
    return;
  g_ptr_array_unref (router->routes);
  g_free (router);
}

void
bs_router_add (BsRouter *router, const char *method, const char *path_template,
               BsRouteHandler handler, gpointer user_data)
{
  BsRoute *route = g_new0 (BsRoute, 1);

  g_return_if_fail (path_template[0] == '/');
  route->method = g_strdup (method);
  route->path_template = g_strdup (path_template);
  route->segments = g_strsplit (path_template + 1, "/", -1);
  route->handler = handler;
  route->user_data = user_data;
  g_ptr_array_add (router->routes, route);
}

static gboolean
is_param (const char *segment)
{
  gsize len = strlen (segment);

  return len > 2 && segment[0] == '{' && segment[len - 1] == '}';
}

/* TRUE when @path fits @route; fills @params when non-NULL. */
static gboolean
path_matches (const BsRoute *route, char **path_segments, GHashTable *params)
{
  guint n = g_strv_length (route->segments);

  if (g_strv_length (path_segments) != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const char *want = route->segments[i];
      if (is_param (want))
        {
          if (path_segments[i][0] == '\0')
            return FALSE;
          if (params != NULL)
            g_hash_table_insert (params, g_strndup (want + 1, strlen (want) - 2),
                                 g_strdup (path_segments[i]));
        }
      else if (!g_str_equal (want, path_segments[i]))
        return FALSE;
    }
  return TRUE;
}

static gboolean
method_matches (const BsRoute *route, const char *method)
{
  return g_str_equal (route->method, method)
         || (g_str_equal (method, "HEAD") && g_str_equal (route->method, "GET"));
}

BsRouteMatch
bs_router_match (BsRouter *router, const char *method, const char *path, const BsRoute **route,
                 GHashTable **params, char **allow)
{
  g_auto (GStrv) segments = NULL;
  g_autoptr (GPtrArray) allowed = g_ptr_array_new ();
  const BsRoute *first = NULL;

  if (path == NULL || path[0] != '/')
    return BS_ROUTE_NOT_FOUND;
  segments = g_strsplit (path + 1, "/", -1);

  for (guint i = 0; i < router->routes->len; i++)
    {
      const BsRoute *r = g_ptr_array_index (router->routes, i);
      if (!path_matches (r, segments, NULL))
        continue;
      if (method_matches (r, method))
        {
          g_autoptr (GHashTable) table
              = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
          path_matches (r, segments, table);
          *route = r;
          *params = g_steal_pointer (&table);
          return BS_ROUTE_FOUND;
        }
      if (first == NULL)
        first = r;
      if (!g_ptr_array_find_with_equal_func (allowed, r->method, g_str_equal, NULL))
        g_ptr_array_add (allowed, r->method);
      if (g_str_equal (r->method, "GET")
          && !g_ptr_array_find_with_equal_func (allowed, "HEAD", g_str_equal, NULL))
        g_ptr_array_add (allowed, (gpointer) "HEAD");
    }

  if (allowed->len == 0)
    return BS_ROUTE_NOT_FOUND;
  g_ptr_array_add (allowed, NULL);
  *route = first;
  *allow = g_strjoinv (", ", (char **) allowed->pdata);
  return BS_ROUTE_METHOD_NOT_ALLOWED;
}

void
bs_router_foreach (BsRouter *router, BsRouteFunc func, gpointer user_data)
{
  for (guint i = 0; i < router->routes->len; i++)
    {
      const BsRoute *r = g_ptr_array_index (router->routes, i);
      func (r->method, r->path_template, user_data);
    }
}

const char *
bs_route_get_template (const BsRoute *route)
{
  return route->path_template;
}

void
bs_route_invoke (const BsRoute *route, BsRequest *request)
{
  route->handler (request, route->user_data);
}
