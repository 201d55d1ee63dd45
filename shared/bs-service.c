/* bs-service.c: one daemon's lifecycle on the GLib main loop. */
#include "bs-service.h"

#include "bs-api-explorer.h"
#include "bs-auth.h"
#include "bs-build-config.h"
#include "bs-config.h"
#include "bs-error.h"
#include "bs-log.h"
#include "bs-loop-thread.h"
#include "bs-loop.h"
#include "bs-process-metrics.h"
#include "bs-request.h"
#include "bs-systemd.h"
#include "bs-tls.h"

#include <glib-unix.h>
#include <string.h>

#define WATCHDOG_PROBE_TIMEOUT_MS 3000

struct _BsService
{
  char *name;
  char *bind_address;
  guint16 port;
  BsMetrics *metrics;
  BsRouter *router; /* until listen, then owned by the server */
  BsHttpServer *server;
  GBytes *openapi;
  BsApiExplorer *explorer; /* GET /docs, or NULL; read-only, shared by the loops */
  GMainLoop *loop;
  SoupSession *probe_session;
  BsWatchdog *watchdog;
  guint drain_timeout_id;
  gboolean stopping;
  gboolean requests_drained;
  guint holds;
  GArray *stop_funcs;      /* of StopFunc */
  GArray *reload_funcs;    /* of StopFunc: the same shape */
  guint reload_holds;      /* a reload under way until 0 */
  BsAuth *auth;            /* bearer tokens, or NULL */
  BsRateLimit *rate_limit; /* writes per client, or NULL */
  BsAddressSet *proxies;   /* TRUSTED_PROXIES, or NULL */
  BsTlsIdentity *tls;      /* HTTPS, or NULL */

  /* several event loops: loop 0 is the main thread's, the others ServiceLoops */
  BsHttpLimits limits;
  guint n_loops;
  BsServiceLoopSetup loop_setup;
  BsServiceLoopTeardown loop_teardown;
  gpointer loop_data;
  gpointer loop0_state;
  GPtrArray *loops; /* ServiceLoop, for loops 1..n_loops-1 */
  guint loops_busy; /* extra loops still serving requests after a stop began */
};

/* An extra event loop: its own thread, server, router and metrics shard. */
typedef struct
{
  BsService *service;
  guint index;
  BsLoopThread *thread;
  BsMetrics *metrics; /* a shard of the service's registry */
  BsHttpServer *server;
  gpointer state;    /* the application's, from loop_setup */
  gint beat_pending; /* atomic: a heartbeat asked and not yet answered */
} ServiceLoop;

typedef struct
{
  BsServiceStopFunc func;
  gpointer user_data;
} StopFunc;

/* OpenMetrics (with exemplars) when the scraper asks for it, as Prometheus
 * does; the classic text format otherwise. */
static void
handle_metrics (BsRequest *request, gpointer user_data)
{
  BsService *service = user_data;
  const char *accept = bs_request_get_header (request, "Accept");
  gboolean open_metrics = accept != NULL && strstr (accept, "application/openmetrics-text") != NULL;
  g_autofree char *text = bs_metrics_render_format (
      service->metrics, open_metrics ? BS_METRICS_FORMAT_OPENMETRICS : BS_METRICS_FORMAT_TEXT);
  gsize len = strlen (text);
  g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&text), len);

  bs_request_reply_bytes (
      request, 200, open_metrics ? BS_METRICS_OPENMETRICS_CONTENT_TYPE : BS_METRICS_CONTENT_TYPE,
      bytes);
}

static void
handle_livez (BsRequest *request, gpointer user_data)
{
  g_autoptr (JsonNode) body = json_from_string ("{\"status\":\"alive\"}", NULL);

  bs_request_reply_json (request, 200, body);
}

static void
handle_openapi (BsRequest *request, gpointer user_data)
{
  BsService *service = user_data;

  if (service->openapi == NULL)
    {
      bs_request_reply_error_literal (request, BS_ERROR_NOT_FOUND, "no OpenAPI document");
      return;
    }
  bs_request_reply_bytes (request, 200, "application/json", service->openapi);
}

typedef struct
{
  BsRateLimit *limit;
  BsMetricFamily *clients;
} RateLimitGauge;

static void
rate_limit_gauge_free (gpointer data)
{
  RateLimitGauge *gauge = data;

  bs_rate_limit_unref (gauge->limit);
  g_free (gauge);
}

/* Rendering may run on any loop: the table has its own lock. */
static void
collect_rate_limit (BsMetrics *metrics, gpointer user_data)
{
  RateLimitGauge *gauge = user_data;

  bs_metric_set (gauge->clients, NULL, bs_rate_limit_get_n_clients (gauge->limit));
}

static void
add_rate_limit (BsService *service)
{
  RateLimitGauge *gauge = g_new0 (RateLimitGauge, 1);

  bs_http_server_set_rate_limit (service->server, service->rate_limit, service->metrics);
  gauge->limit = bs_rate_limit_ref (service->rate_limit);
  gauge->clients = bs_metrics_gauge (
      service->metrics, "http_rate_limit_clients",
      "Client addresses in the table of the write rate limit (at most RATE_LIMIT_CLIENTS).", NULL);
  bs_metrics_add_collector (service->metrics, collect_rate_limit, gauge, rate_limit_gauge_free);
}

static void
add_service_routes (BsService *service, BsRouter *router)
{
  bs_router_add (router, "GET", "/metrics", handle_metrics, service);
  bs_router_add (router, "GET", "/livez", handle_livez, service);
  bs_router_add (router, "GET", "/openapi.json", handle_openapi, service);
  if (service->explorer != NULL)
    bs_api_explorer_add_routes (service->explorer, router);
}

BsService *
bs_service_new (const char *name, guint16 default_port, GError **error)
{
  return bs_service_new_full (name, "PORT", default_port, error);
}

BsService *
bs_service_new_full (const char *name, const char *port_variable, guint16 default_port,
                     GError **error)
{
  g_autoptr (BsService) service = g_new0 (BsService, 1);
  BsHttpLimits limits;
  guint timeout_ms = 0;
  g_autofree char *access_log = NULL;
  BsAccessLog access_mode = BS_ACCESS_LOG_ALL;
  guint access_max_per_s = 0;
  g_autofree char *trusted_proxies = NULL;
  g_autoptr (GError) local_error = NULL;

  service->name = g_strdup (name);
  bs_http_limits_init_default (&limits);
  if (!bs_config_get_port (port_variable, default_port, &service->port, error)
      || !bs_config_get_string ("BIND_ADDRESS", "0.0.0.0", &service->bind_address, error)
      || !bs_config_get_uint ("HTTP_REQUEST_TIMEOUT_MS", limits.request_timeout_ms, 100,
                              3600 * 1000, &timeout_ms, error)
      || !bs_config_get_uint ("HTTP_MAX_CONNECTIONS", limits.max_connections, 1, 10000000,
                              &limits.max_connections, error)
      || !bs_config_get_string ("ACCESS_LOG", "all", &access_log, error)
      || !bs_config_get_uint ("ACCESS_LOG_MAX_PER_S", BS_ACCESS_LOG_DEFAULT_MAX_PER_S, 0, 1000000,
                              &access_max_per_s, error)
      || !bs_config_get_string ("TRUSTED_PROXIES", "", &trusted_proxies, error)
      || !bs_rate_limit_new_from_environment (&service->rate_limit, error))
    return NULL;
  service->proxies = bs_address_set_new ("TRUSTED_PROXIES", trusted_proxies, error);
  if (service->proxies == NULL)
    return NULL;
  service->tls = bs_tls_identity_new_from_environment (&local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (!bs_access_log_from_string (access_log, &access_mode))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "ACCESS_LOG=\"%s\" is invalid: expected all, errors or off", access_log);
      return NULL;
    }
  bs_log_set_access (access_mode, access_max_per_s);
  if (!g_hostname_is_ip_address (service->bind_address))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "BIND_ADDRESS=\"%s\" is invalid: expected an IP address", service->bind_address);
      return NULL;
    }
  limits.request_timeout_ms = timeout_ms;
  service->limits = limits;
  service->n_loops = 1;
  service->loops = g_ptr_array_new ();

  service->metrics = bs_metrics_new ();
  bs_process_metrics_register (service->metrics);
  service->router = bs_router_new ();
  add_service_routes (service, service->router);
  service->server = bs_http_server_new (service->router, service->metrics, &limits);
  bs_http_server_set_trusted_proxies (service->server, service->proxies);
  if (service->rate_limit != NULL)
    add_rate_limit (service);
  if (service->tls != NULL)
    bs_http_server_set_tls (service->server, service->tls, service->metrics);
  service->loop = g_main_loop_new (NULL, FALSE);
  service->stop_funcs = g_array_new (FALSE, FALSE, sizeof (StopFunc));
  service->reload_funcs = g_array_new (FALSE, FALSE, sizeof (StopFunc));
  return g_steal_pointer (&service);
}

void
bs_service_free (BsService *service)
{
  if (service == NULL)
    return;
  bs_service_stop_loops (service);
  g_clear_pointer (&service->loops, g_ptr_array_unref);
  g_clear_handle_id (&service->drain_timeout_id, g_source_remove);
  g_clear_pointer (&service->watchdog, bs_watchdog_free);
  g_clear_object (&service->probe_session);
  /* the application's state before the server: failing its queries replies
   * through the server */
  if (service->loop_teardown != NULL && service->loop0_state != NULL)
    service->loop_teardown (g_steal_pointer (&service->loop0_state));
  g_clear_pointer (&service->server, bs_http_server_free); /* frees the router */
  g_clear_pointer (&service->metrics, bs_metrics_free);
  g_clear_pointer (&service->openapi, g_bytes_unref);
  g_clear_pointer (&service->explorer, bs_api_explorer_free); /* after the servers */
  g_clear_pointer (&service->loop, g_main_loop_unref);
  g_clear_pointer (&service->stop_funcs, g_array_unref);
  g_clear_pointer (&service->reload_funcs, g_array_unref);
  g_clear_pointer (&service->auth, bs_auth_unref);
  g_clear_pointer (&service->rate_limit, bs_rate_limit_unref);
  g_clear_pointer (&service->proxies, bs_address_set_unref);
  g_clear_pointer (&service->tls, bs_tls_identity_unref);
  g_free (service->bind_address);
  g_free (service->name);
  g_free (service);
}

const char *
bs_service_get_name (BsService *service)
{
  return service->name;
}

BsMetrics *
bs_service_get_metrics (BsService *service)
{
  return service->metrics;
}

BsRouter *
bs_service_get_router (BsService *service)
{
  return service->router;
}

void
bs_service_set_openapi (BsService *service, GBytes *document)
{
  g_clear_pointer (&service->openapi, g_bytes_unref);
  service->openapi = g_bytes_ref (document);
}

gboolean
bs_service_enable_api_explorer (BsService *service, GError **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *url = NULL;
  g_autofree char *title = NULL;
  const char *dir_set = g_getenv (BS_API_EXPLORER_DIR_VARIABLE);
  const char *problem;

  g_return_val_if_fail (service->explorer == NULL, FALSE);
  if (!bs_config_get_string (BS_API_EXPLORER_DIR_VARIABLE, BS_SWAGGER_UI_DIR, &dir, error)
      || !bs_config_get_string (BS_API_EXPLORER_URL_VARIABLE, "", &url, error))
    return FALSE;
  title = g_strdup_printf ("%s API", service->name);
  service->explorer
      = bs_api_explorer_new (title, url[0] != '\0' ? NULL : dir, url[0] != '\0' ? url : NULL,
                             BS_API_EXPLORER_URL_VARIABLE, error);
  if (service->explorer == NULL)
    return FALSE;
  problem = bs_api_explorer_get_problem (service->explorer);
  if (url[0] != '\0' && dir_set != NULL && dir_set[0] != '\0')
    g_warning ("%s ignored: %s is set", BS_API_EXPLORER_DIR_VARIABLE, BS_API_EXPLORER_URL_VARIABLE);
  if (problem != NULL)
    g_warning ("GET /docs will answer 404: %s", problem);
  else
    g_message ("API explorer at /docs, Swagger UI from %s", url[0] != '\0' ? url : dir);
  /* loop 0's router now; the other loops' when they start */
  bs_api_explorer_add_routes (service->explorer, service->router);
  return TRUE;
}

void
bs_service_set_loops (BsService *service, guint n_loops, BsServiceLoopSetup setup,
                      BsServiceLoopTeardown teardown, gpointer user_data)
{
  g_return_if_fail (n_loops >= 1 && setup != NULL);
  service->n_loops = n_loops;
  service->loop_setup = setup;
  service->loop_teardown = teardown;
  service->loop_data = user_data;
}

guint
bs_service_get_n_loops (BsService *service)
{
  return service->n_loops;
}

/* On the loop's own thread. */
static gboolean
loop_start (gpointer user_data, GError **error)
{
  ServiceLoop *loop = user_data;
  BsService *service = loop->service;
  BsRouter *router = bs_router_new ();

  add_service_routes (service, router);
  loop->state = service->loop_setup (service, loop->index, router, loop->metrics,
                                     service->loop_data, error);
  if (loop->state == NULL)
    {
      bs_router_free (router);
      return FALSE;
    }
  loop->server = bs_http_server_new (router, loop->metrics, &service->limits);
  if (service->auth != NULL)
    bs_http_server_set_auth (loop->server, service->auth, loop->metrics);
  if (service->rate_limit != NULL)
    bs_http_server_set_rate_limit (loop->server, service->rate_limit, loop->metrics);
  bs_http_server_set_trusted_proxies (loop->server, service->proxies);
  if (service->tls != NULL)
    bs_http_server_set_tls (loop->server, service->tls, loop->metrics);
  bs_http_server_share_limits (loop->server, service->server, service->n_loops);
  return bs_http_server_listen_like (loop->server, service->server, error);
}

/* On the loop's own thread, once its loop ended. */
static void
loop_stop (gpointer user_data)
{
  ServiceLoop *loop = user_data;

  if (loop->state != NULL && loop->service->loop_teardown != NULL)
    loop->service->loop_teardown (g_steal_pointer (&loop->state));
  g_clear_pointer (&loop->server, bs_http_server_free);
}

static void
service_loop_free (ServiceLoop *loop)
{
  g_clear_pointer (&loop->thread, bs_loop_thread_free); /* runs loop_stop */
  bs_metrics_remove_shard (loop->service->metrics, loop->metrics);
  g_clear_pointer (&loop->metrics, bs_metrics_free);
  g_free (loop);
}

void
bs_service_stop_loops (BsService *service)
{
  while (service->loops != NULL && service->loops->len > 0)
    service_loop_free (g_ptr_array_steal_index (service->loops, service->loops->len - 1));
}

static gboolean
start_loops (BsService *service, GError **error)
{
  for (guint i = 1; i < service->n_loops; i++)
    {
      ServiceLoop *loop = g_new0 (ServiceLoop, 1);
      g_autofree char *name = g_strdup_printf ("loop-%u", i);

      loop->service = service;
      loop->index = i;
      loop->metrics = bs_metrics_new ();
      bs_metrics_add_shard (service->metrics, loop->metrics);
      loop->thread = bs_loop_thread_new (name, loop_start, loop_stop, loop, error);
      if (loop->thread == NULL)
        {
          service_loop_free (loop);
          return FALSE;
        }
      g_ptr_array_add (service->loops, loop);
    }
  return TRUE;
}

gboolean
bs_service_listen (BsService *service, GError **error)
{
  if (service->loop_setup != NULL)
    {
      service->loop0_state = service->loop_setup (service, 0, service->router, service->metrics,
                                                  service->loop_data, error);
      if (service->loop0_state == NULL)
        return FALSE;
    }
  bs_http_server_share_limits (service->server, service->server, service->n_loops);
  if (!bs_http_server_listen (service->server, service->bind_address, service->port, error))
    return FALSE;
  service->port = bs_http_server_get_port (service->server);
  return start_loops (service, error);
}

/* ---- watchdog: ping only after a real request to ourselves succeeds ------ */

typedef struct
{
  BsWatchdogProbeDone done;
  gpointer done_data;
  GCancellable *cancellable;
  guint timeout_id;
} Probe;

static gboolean
probe_timeout_cb (gpointer user_data)
{
  Probe *probe = user_data;

  probe->timeout_id = 0;
  g_cancellable_cancel (probe->cancellable);
  return G_SOURCE_REMOVE;
}

static void
probe_finished (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Probe *probe = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body
      = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  gboolean healthy = body != NULL && msg != NULL && soup_message_get_status (msg) == 200;

  if (!healthy)
    g_warning ("watchdog self-check of /livez failed: %s",
               error != NULL ? error->message : "unexpected status");
  g_clear_handle_id (&probe->timeout_id, g_source_remove);
  probe->done (healthy, probe->done_data);
  g_object_unref (probe->cancellable);
  g_free (probe);
}

/* On an extra loop's thread: it is turning. */
static gboolean
loop_heartbeat (gpointer user_data)
{
  ServiceLoop *loop = user_data;

  g_atomic_int_set (&loop->beat_pending, 0);
  return G_SOURCE_REMOVE;
}

/* TRUE when every extra loop answered the previous heartbeat; then asks
 * again. A loop stuck for a whole watchdog interval fails the check. */
static gboolean
loops_turning (BsService *service)
{
  gboolean all = TRUE;

  for (guint i = 0; i < service->loops->len; i++)
    {
      ServiceLoop *loop = g_ptr_array_index (service->loops, i);

      if (g_atomic_int_get (&loop->beat_pending))
        {
          g_warning ("watchdog: event loop %u did not answer within one interval", loop->index);
          all = FALSE;
          continue;
        }
      g_atomic_int_set (&loop->beat_pending, 1);
      bs_loop_thread_invoke (loop->thread, loop_heartbeat, loop);
    }
  return all;
}

static gboolean
accept_own_certificate (SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors,
                        gpointer user_data)
{
  return TRUE;
}

static void
watchdog_probe (BsWatchdogProbeDone done, gpointer done_data, gpointer user_data)
{
  BsService *service = user_data;
  const char *scheme = service->tls != NULL ? "https" : "http";
  Probe *probe;
  const char *host = service->bind_address;
  g_autofree char *uri = NULL;
  g_autoptr (SoupMessage) msg = NULL;

  if (!loops_turning (service))
    {
      done (FALSE, done_data);
      return;
    }
  probe = g_new0 (Probe, 1);
  if (g_str_equal (host, "0.0.0.0"))
    host = "127.0.0.1";
  else if (g_str_equal (host, "::"))
    host = "::1";
  uri = strchr (host, ':') != NULL
            ? g_strdup_printf ("%s://[%s]:%u/livez", scheme, host, service->port)
            : g_strdup_printf ("%s://%s:%u/livez", scheme, host, service->port);
  msg = soup_message_new ("GET", uri);
  /* ourselves over loopback: our own certificate, whatever names it holds */
  if (service->tls != NULL)
    g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_own_certificate), NULL);
  probe->done = done;
  probe->done_data = done_data;
  probe->cancellable = g_cancellable_new ();
  probe->timeout_id = g_timeout_add (WATCHDOG_PROBE_TIMEOUT_MS, probe_timeout_cb, probe);
  soup_session_send_and_read_async (service->probe_session, msg, G_PRIORITY_DEFAULT,
                                    probe->cancellable, probe_finished, probe);
}

/* ---- stopping ------------------------------------------------------------ */

void
bs_service_add_stop_func (BsService *service, BsServiceStopFunc func, gpointer user_data)
{
  StopFunc stop = { func, user_data };

  g_array_append_val (service->stop_funcs, stop);
}

gboolean
bs_service_is_stopping (BsService *service)
{
  return service->stopping;
}

void
bs_service_hold (BsService *service)
{
  service->holds++;
}

static void
quit_when_done (BsService *service)
{
  if (!service->stopping || !service->requests_drained || service->loops_busy > 0
      || service->holds > 0)
    return;
  g_message ("all requests and work finished; stopping");
  g_main_loop_quit (service->loop);
}

void
bs_service_release (BsService *service)
{
  g_return_if_fail (service->holds > 0);
  service->holds--;
  quit_when_done (service);
}

static gboolean
drained_cb (gpointer user_data)
{
  BsService *service = user_data;

  service->requests_drained = TRUE;
  quit_when_done (service);
  return G_SOURCE_REMOVE;
}

/* On the main thread: an extra loop has no request left. */
static gboolean
loop_drained_main (gpointer user_data)
{
  BsService *service = user_data;

  service->loops_busy--;
  quit_when_done (service);
  return G_SOURCE_REMOVE;
}

/* On the loop's thread. */
static gboolean
loop_drained (gpointer user_data)
{
  ServiceLoop *loop = user_data;

  bs_invoke_on (NULL, loop_drained_main, loop->service, NULL);
  return G_SOURCE_REMOVE;
}

/* On the loop's thread: stop accepting, answer what was read, then say so. */
static gboolean
loop_begin_stop (gpointer user_data)
{
  ServiceLoop *loop = user_data;

  bs_http_server_set_drained_func (loop->server, loop_drained, loop);
  bs_http_server_stop_accepting (loop->server);
  return G_SOURCE_REMOVE;
}

static guint
in_flight_everywhere (BsService *service)
{
  guint n = bs_http_server_get_in_flight (service->server);

  for (guint i = 0; i < service->loops->len; i++)
    n += bs_http_server_get_in_flight (
        ((ServiceLoop *) g_ptr_array_index (service->loops, i))->server);
  return n;
}

static gboolean
drain_timeout_cb (gpointer user_data)
{
  BsService *service = user_data;

  service->drain_timeout_id = 0;
  g_warning ("%u requests and %u other tasks still running after %d s; stopping anyway",
             in_flight_everywhere (service), service->holds, BS_SERVICE_DRAIN_TIMEOUT_S);
  g_main_loop_quit (service->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
signal_cb (gpointer user_data)
{
  BsService *service = user_data;

  if (service->stopping)
    {
      g_warning ("second stop signal; exiting without waiting");
      g_main_loop_quit (service->loop);
      return G_SOURCE_CONTINUE;
    }
  service->stopping = TRUE;
  bs_systemd_notify ("STOPPING=1");
  bs_systemd_notify_status ("Stopping: finishing %u requests in flight",
                            in_flight_everywhere (service));
  g_message ("stop requested; finishing %u requests in flight", in_flight_everywhere (service));
  g_clear_pointer (&service->watchdog, bs_watchdog_free);
  for (guint i = 0; i < service->stop_funcs->len; i++)
    {
      StopFunc *stop = &g_array_index (service->stop_funcs, StopFunc, i);
      stop->func (service, stop->user_data);
    }
  service->drain_timeout_id
      = g_timeout_add_seconds (BS_SERVICE_DRAIN_TIMEOUT_S, drain_timeout_cb, service);
  service->loops_busy = service->loops->len;
  for (guint i = 0; i < service->loops->len; i++)
    {
      ServiceLoop *loop = g_ptr_array_index (service->loops, i);
      bs_loop_thread_invoke (loop->thread, loop_begin_stop, loop);
    }
  bs_http_server_set_drained_func (service->server, drained_cb, service);
  bs_http_server_stop_accepting (service->server);
  return G_SOURCE_CONTINUE;
}

/* ---- tokens and reloading ------------------------------------------------ */

gboolean
bs_service_require_tokens (BsService *service, const char *const *protected_reads, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (BsAuth) auth = bs_auth_new_from_environment (protected_reads, &local_error);

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (auth == NULL)
    {
      g_message ("writes are open: no %s and no credential %s, so no request needs a token",
                 BS_AUTH_TOKENS_VARIABLE, BS_AUTH_TOKENS_CREDENTIAL);
      return TRUE;
    }
  g_message ("bearer tokens required for writes%s: %u tokens from %s",
             protected_reads != NULL ? " and protected reads" : "", bs_auth_get_n_tokens (auth),
             bs_auth_get_source (auth));
  if (bs_auth_get_n_tokens (auth) == 0)
    g_warning ("%s lists no token: every request that needs one is refused",
               bs_auth_get_source (auth));
  bs_http_server_set_auth (service->server, auth, service->metrics);
  service->auth = g_steal_pointer (&auth);
  return TRUE;
}

void
bs_service_add_reload_func (BsService *service, BsServiceReloadFunc func, gpointer user_data)
{
  StopFunc reload = { (BsServiceStopFunc) func, user_data };

  g_array_append_val (service->reload_funcs, reload);
}

void
bs_service_reload_hold (BsService *service)
{
  service->reload_holds++;
}

void
bs_service_reload_release (BsService *service)
{
  g_return_if_fail (service->reload_holds > 0);
  if (--service->reload_holds > 0)
    return;
  g_message ("reload finished");
  bs_systemd_notify ("READY=1");
  bs_systemd_notify_status ("Serving on port %u", service->port);
}

static void
tokens_reloaded (BsAuth *auth, const GError *error, gpointer user_data)
{
  BsService *service = user_data;

  if (error != NULL)
    g_warning ("reloading tokens failed; the %u tokens in use stay: %s",
               bs_auth_get_n_tokens (auth), error->message);
  else
    g_message ("tokens reloaded: %u tokens from %s", bs_auth_get_n_tokens (auth),
               bs_auth_get_source (auth));
  bs_service_reload_release (service);
}

static void
certificate_reloaded (BsTlsIdentity *identity, const GError *error, gpointer user_data)
{
  BsService *service = user_data;

  if (error != NULL)
    g_warning ("reloading the TLS certificate failed; the one in use stays: %s", error->message);
  else
    g_message ("TLS certificate reloaded from %s", bs_tls_identity_get_source (identity));
  bs_service_reload_release (service);
}

static gboolean
reload_cb (gpointer user_data)
{
  BsService *service = user_data;
  g_autofree char *state = NULL;

  if (service->stopping)
    return G_SOURCE_CONTINUE;
  if (service->reload_holds > 0)
    {
      g_message ("reload requested while one is under way; ignored");
      return G_SOURCE_CONTINUE;
    }
  state
      = g_strdup_printf ("RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT, g_get_monotonic_time ());
  bs_systemd_notify (state);
  bs_systemd_notify_status ("Reloading");
  g_message ("reload requested (SIGHUP)");
  service->reload_holds = 1; /* until every reload function has been started */
  for (guint i = 0; i < service->reload_funcs->len; i++)
    {
      StopFunc *reload = &g_array_index (service->reload_funcs, StopFunc, i);
      ((BsServiceReloadFunc) reload->func) (service, reload->user_data);
    }
  if (service->auth != NULL)
    {
      bs_service_reload_hold (service);
      bs_auth_reload_async (service->auth, tokens_reloaded, service);
    }
  if (service->tls != NULL)
    {
      bs_service_reload_hold (service);
      bs_tls_identity_reload_async (service->tls, certificate_reloaded, service);
    }
  bs_service_reload_release (service);
  return G_SOURCE_CONTINUE;
}

int
bs_service_run (BsService *service)
{
  guint term_id = g_unix_signal_add (SIGTERM, signal_cb, service);
  guint int_id = g_unix_signal_add (SIGINT, signal_cb, service);
  guint hup_id = g_unix_signal_add (SIGHUP, reload_cb, service);

  /* no proxy: the self-check talks to ourselves, whatever http_proxy says */
  service->probe_session = soup_session_new_with_options (
      "user-agent", "bookstore-watchdog", "max-conns-per-host", 2, "proxy-resolver", NULL, NULL);
  bs_systemd_notify ("READY=1");
  service->watchdog = bs_watchdog_new (watchdog_probe, service);
  bs_systemd_notify_status ("Serving on port %u", service->port);
  g_message ("%s %s listening on %s:%u%s%s, %u event loop%s", service->name, BS_VERSION,
             service->bind_address, service->port, service->tls != NULL ? " (HTTPS)" : "",
             bs_http_server_is_socket_activated (service->server) ? " (socket-activated)" : "",
             service->n_loops, service->n_loops == 1 ? "" : "s");

  g_main_loop_run (service->loop);

  g_source_remove (term_id);
  g_source_remove (int_id);
  g_source_remove (hup_id);
  g_clear_pointer (&service->watchdog, bs_watchdog_free);
  bs_service_stop_loops (service);
  g_message ("%s stopped", service->name);
  return 0;
}
