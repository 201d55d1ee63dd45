/* bs-service.h: what every Bookstore daemon does around its own routes:
 * common configuration, the HTTP server, /metrics, /livez, /openapi.json,
 * /docs (when the service asks for it),
 * systemd readiness and watchdog, and a graceful stop on SIGTERM/SIGINT. */
#pragma once

#include "bs-http-server.h"
#include "bs-metrics.h"
#include "bs-router.h"

G_BEGIN_DECLS

typedef struct _BsService BsService;

#define BS_SERVICE_DRAIN_TIMEOUT_S 10

/* Reads PORT (@default_port), BIND_ADDRESS (0.0.0.0) and
 * HTTP_REQUEST_TIMEOUT_MS; BS_ERROR_CONFIG names a bad variable. */
BsService *bs_service_new (const char *name, guint16 default_port, GError **error);
/* Same, with the port read from @port_variable instead of PORT. */
BsService *bs_service_new_full (const char *name, const char *port_variable, guint16 default_port,
                                GError **error);
void bs_service_free (BsService *service);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsService, bs_service_free)

const char *bs_service_get_name (BsService *service);
BsMetrics *bs_service_get_metrics (BsService *service);
/* Add routes before bs_service_listen(). */
BsRouter *bs_service_get_router (BsService *service);

/* Served at GET /openapi.json. */
void bs_service_set_openapi (BsService *service, GBytes *document);

/* GET /docs: the API explorer (bs-api-explorer.h) of /openapi.json, with
 * Swagger UI from DOCS_ASSETS_URL, else read now from DOCS_ASSETS_DIR
 * (default: where meson installed it). Assets missing are a warning, and
 * /docs answers 404 saying how to fix it; a bad DOCS_ASSETS_URL is
 * BS_ERROR_CONFIG. Call once, before bs_service_listen(). */
gboolean bs_service_enable_api_explorer (BsService *service, GError **error);

/* Several event loops (BOOKS_THREADS and the like). The service serves from
 * @n_loops loops: loop 0 on the main thread, the others each on a thread of
 * its own with its own GMainContext, HTTP server (accepting from the same
 * listening socket), router and metrics shard (summed into the service's
 * registry at a scrape). At bs_service_listen(), @setup runs once per loop,
 * on that loop's thread with its context as the thread default: it adds the
 * application's routes to @router, makes what the loop needs (its database
 * pool, ...) counting into @metrics, and returns that state (NULL with
 * @error set fails the start). @teardown frees it on the same thread once
 * the loop has stopped. Nothing may be shared between loops without a lock
 * or an atomic: each loop's handlers use their own state. */
typedef gpointer (*BsServiceLoopSetup) (BsService *service, guint index, BsRouter *router,
                                        BsMetrics *metrics, gpointer user_data, GError **error);
typedef void (*BsServiceLoopTeardown) (gpointer state);
void bs_service_set_loops (BsService *service, guint n_loops, BsServiceLoopSetup setup,
                           BsServiceLoopTeardown teardown, gpointer user_data);
guint bs_service_get_n_loops (BsService *service);

/* Bearer tokens (bs-auth.h): when API_TOKENS_FILE or the credential
 * api-tokens is there, every request but GET and HEAD needs a token, and
 * GET and HEAD under @protected_reads ("/v1/orders"; NULL for none) too.
 * Without either, writes stay open (and the start says so). Call before
 * bs_service_listen(); BS_ERROR_CONFIG for a bad file. SIGHUP re-reads the
 * file; a bad file then keeps the tokens in use. */
gboolean bs_service_require_tokens (BsService *service, const char *const *protected_reads,
                                    GError **error);

/* SIGHUP (systemctl reload): each reload function runs on the main loop;
 * one that finishes later holds the reload (bs_service_reload_hold()) until
 * it is done (bs_service_reload_release()). systemd hears RELOADING=1 at the
 * start and READY=1 once every hold is released. */
typedef void (*BsServiceReloadFunc) (BsService *service, gpointer user_data);
void bs_service_add_reload_func (BsService *service, BsServiceReloadFunc func, gpointer user_data);
void bs_service_reload_hold (BsService *service);
void bs_service_reload_release (BsService *service);

/* Listens and starts the extra loops. */
gboolean bs_service_listen (BsService *service, GError **error);
/* Stops and joins the extra loops (bs_service_run() does, when it returns). */
void bs_service_stop_loops (BsService *service);

/* Called once when a stop begins (SIGTERM/SIGINT): stop taking new work.
 * Work still running holds the service (bs_service_hold()) until it is done
 * (bs_service_release()); the main loop ends once the HTTP requests and the
 * holds are finished, or after BS_SERVICE_DRAIN_TIMEOUT_S. */
typedef void (*BsServiceStopFunc) (BsService *service, gpointer user_data);
void bs_service_add_stop_func (BsService *service, BsServiceStopFunc func, gpointer user_data);
void bs_service_hold (BsService *service);
void bs_service_release (BsService *service);
gboolean bs_service_is_stopping (BsService *service);

/* READY=1, watchdog, signals, main loop; returns once stopped and drained.
 * The exit status for main(). */
int bs_service_run (BsService *service);

G_END_DECLS
