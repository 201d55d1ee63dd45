/* bs-service.c: one daemon's lifecycle on the GLib main loop. */
#include "bs-service.h"

#include "bs-build-config.h"
#include "bs-config.h"
#include "bs-error.h"
#include "bs-process-metrics.h"
#include "bs-request.h"
#include "bs-systemd.h"

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
  GMainLoop *loop;
  SoupSession *probe_session;
  BsWatchdog *watchdog;
  guint drain_timeout_id;
  gboolean stopping;
  gboolean requests_drained;
  guint holds;
  GArray *stop_funcs; /* of StopFunc */
};

typedef struct
{
  BsServiceStopFunc func;
  gpointer user_data;
} StopFunc;

static void
handle_metrics (BsRequest *request, gpointer user_data)
{
  BsService *service = user_data;
  g_autofree char *text = bs_metrics_render (service->metrics);
  gsize len = strlen (text);
  g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&text), len);

  bs_request_reply_bytes (request, 200, BS_METRICS_CONTENT_TYPE, bytes);
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

  service->name = g_strdup (name);
  bs_http_limits_init_default (&limits);
  if (!bs_config_get_port (port_variable, default_port, &service->port, error)
      || !bs_config_get_string ("BIND_ADDRESS", "0.0.0.0", &service->bind_address, error)
      || !bs_config_get_uint ("HTTP_REQUEST_TIMEOUT_MS", limits.request_timeout_ms, 100,
                              3600 * 1000, &timeout_ms, error)
      || !bs_config_get_uint ("HTTP_MAX_CONNECTIONS", limits.max_connections, 1, 10000000,
                              &limits.max_connections, error))
    return NULL;
  if (!g_hostname_is_ip_address (service->bind_address))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "BIND_ADDRESS=\"%s\" is invalid: expected an IP address", service->bind_address);
      return NULL;
    }
  limits.request_timeout_ms = timeout_ms;

  service->metrics = bs_metrics_new ();
  bs_process_metrics_register (service->metrics);
  service->router = bs_router_new ();
  bs_router_add (service->router, "GET", "/metrics", handle_metrics, service);
  bs_router_add (service->router, "GET", "/livez", handle_livez, service);
  bs_router_add (service->router, "GET", "/openapi.json", handle_openapi, service);
  service->server = bs_http_server_new (service->router, service->metrics, &limits);
  service->loop = g_main_loop_new (NULL, FALSE);
  service->stop_funcs = g_array_new (FALSE, FALSE, sizeof (StopFunc));
  return g_steal_pointer (&service);
}

void
bs_service_free (BsService *service)
{
  if (service == NULL)
    return;
  g_clear_handle_id (&service->drain_timeout_id, g_source_remove);
  g_clear_pointer (&service->watchdog, bs_watchdog_free);
  g_clear_object (&service->probe_session);
  g_clear_pointer (&service->server, bs_http_server_free); /* frees the router */
  g_clear_pointer (&service->metrics, bs_metrics_free);
  g_clear_pointer (&service->openapi, g_bytes_unref);
  g_clear_pointer (&service->loop, g_main_loop_unref);
  g_clear_pointer (&service->stop_funcs, g_array_unref);
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
bs_service_listen (BsService *service, GError **error)
{
  if (!bs_http_server_listen (service->server, service->bind_address, service->port, error))
    return FALSE;
  service->port = bs_http_server_get_port (service->server);
  return TRUE;
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

static void
watchdog_probe (BsWatchdogProbeDone done, gpointer done_data, gpointer user_data)
{
  BsService *service = user_data;
  Probe *probe = g_new0 (Probe, 1);
  const char *host = service->bind_address;
  g_autofree char *uri = NULL;
  g_autoptr (SoupMessage) msg = NULL;

  if (g_str_equal (host, "0.0.0.0"))
    host = "127.0.0.1";
  else if (g_str_equal (host, "::"))
    host = "::1";
  uri = strchr (host, ':') != NULL ? g_strdup_printf ("http://[%s]:%u/livez", host, service->port)
                                   : g_strdup_printf ("http://%s:%u/livez", host, service->port);
  msg = soup_message_new ("GET", uri);
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
  if (!service->stopping || !service->requests_drained || service->holds > 0)
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

static gboolean
drain_timeout_cb (gpointer user_data)
{
  BsService *service = user_data;

  service->drain_timeout_id = 0;
  g_warning ("%u requests and %u other tasks still running after %d s; stopping anyway",
             bs_http_server_get_in_flight (service->server), service->holds,
             BS_SERVICE_DRAIN_TIMEOUT_S);
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
                            bs_http_server_get_in_flight (service->server));
  g_message ("stop requested; finishing %u requests in flight",
             bs_http_server_get_in_flight (service->server));
  g_clear_pointer (&service->watchdog, bs_watchdog_free);
  for (guint i = 0; i < service->stop_funcs->len; i++)
    {
      StopFunc *stop = &g_array_index (service->stop_funcs, StopFunc, i);
      stop->func (service, stop->user_data);
    }
  service->drain_timeout_id
      = g_timeout_add_seconds (BS_SERVICE_DRAIN_TIMEOUT_S, drain_timeout_cb, service);
  bs_http_server_set_drained_func (service->server, drained_cb, service);
  bs_http_server_stop_accepting (service->server);
  return G_SOURCE_CONTINUE;
}

int
bs_service_run (BsService *service)
{
  guint term_id = g_unix_signal_add (SIGTERM, signal_cb, service);
  guint int_id = g_unix_signal_add (SIGINT, signal_cb, service);

  /* no proxy: the self-check talks to ourselves, whatever http_proxy says */
  service->probe_session = soup_session_new_with_options (
      "user-agent", "bookstore-watchdog", "max-conns-per-host", 2, "proxy-resolver", NULL, NULL);
  bs_systemd_notify ("READY=1");
  service->watchdog = bs_watchdog_new (watchdog_probe, service);
  bs_systemd_notify_status ("Serving on port %u", service->port);
  g_message ("%s %s listening on %s:%u%s", service->name, BS_VERSION, service->bind_address,
             service->port,
             bs_http_server_is_socket_activated (service->server) ? " (socket-activated)" : "");

  g_main_loop_run (service->loop);

  g_source_remove (term_id);
  g_source_remove (int_id);
  g_clear_pointer (&service->watchdog, bs_watchdog_free);
  g_message ("%s stopped", service->name);
  return 0;
}
