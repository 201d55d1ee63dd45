/* bs-http-server.c: SoupServer plus the limits libsoup 3.2 leaves to us:
 * our own listening socket and accept loop (bs-http-listener), a connection
 * limit, every byte checked by bs-http-guard on the way in (bs-http-stream),
 * a body cap, a deadline on reading each request (which also closes idle
 * keep-alive connections), access records and metrics. */
#include "bs-http-server.h"

#include "bs-auth.h"
#include "bs-build-config.h"
#include "bs-client-address.h"
#include "bs-error.h"
#include "bs-heap-trim.h"
#include "bs-json.h"
#include "bs-http-linger.h"
#include "bs-http-listener.h"
#include "bs-http-stream.h"
#include "bs-log.h"
#include "bs-loop.h"
#include "bs-rate-limit.h"
#include "bs-request-id.h"
#include "bs-tls.h"
#include "bs-request-private.h"
#include "bs-systemd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQUEST_DATA_KEY "bs-request"
#define WATCHDOG_USER_AGENT "bookstore-watchdog"

struct _BsHttpServer
{
  SoupServer *soup;
  BsRouter *router;
  BsHttpLimits limits;
  GHashTable *live;        /* RequestLink set: every message libsoup is reading or answering */
  GHashTable *connections; /* BsHttpStream (ref) set: every connection we accepted */
  BsHttpStreamHooks hooks;
  guint reaper_id;
  BsHeapTrim heap_trim;
  gint64 refuse_window_us; /* start of the current refusal window */
  guint refused_in_window;
  guint refuse_budget; /* per window: this loop's share of BS_HTTP_REFUSE_BUDGET */
  GSocket *listen_socket;
  BsHttpListener *listener;
  GSocket *keepalive_socket[2]; /* see keep_alive_enable() */
  gboolean refusing;            /* in an episode of refused connections */
  guint refused_lingering;      /* refused connections not closed yet */
  guint16 port;
  gboolean socket_activated;
  gboolean draining;
  guint in_flight;
  gint open_own;    /* connections open here, when not shared */
  gint *open_total; /* atomic: this server's or, with several loops, the first's */
  GSourceFunc drained_func;
  gpointer drained_data;
  BsMetricFamily *requests_total;
  BsMetricFamily *request_duration;
  BsMetricFamily *in_flight_gauge;
  BsMetricFamily *connections_open;
  BsMetricFamily *connections_refused;
  BsMetricFamily *accept_pauses;
  BsAuth *auth; /* bearer tokens, or NULL: no request needs one */
  BsMetricFamily *auth_counter;
  BsRateLimit *rate_limit; /* writes per client, or NULL: no limit */
  BsAddressSet *proxies;   /* whose X-Forwarded-For counts, or NULL */
  BsMetricFamily *rate_limited_total;
  BsTlsIdentity *tls; /* HTTPS with its certificate, or NULL: plain HTTP */
  BsMetricFamily *tls_handshake_failures;
};

typedef struct
{
  BsHttpServer *server; /* NULL once the server is gone */
  BsRequest *request;
} RequestLink;

void
bs_http_limits_init_default (BsHttpLimits *limits)
{
  limits->max_body_bytes = BS_HTTP_DEFAULT_MAX_BODY;
  limits->request_timeout_ms = BS_HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
  limits->listen_backlog = BS_HTTP_DEFAULT_BACKLOG;
  limits->max_connections = bs_http_default_max_connections ();
}

guint
bs_http_default_max_connections (void)
{
  struct rlimit nofile;

  if (getrlimit (RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY)
    return BS_HTTP_MAX_CONNECTIONS_CAP;
  return (guint) CLAMP (nofile.rlim_cur / 2, 16, BS_HTTP_MAX_CONNECTIONS_CAP);
}

static BsRequest *
request_for (SoupServerMessage *msg)
{
  RequestLink *link = g_object_get_data (G_OBJECT (msg), REQUEST_DATA_KEY);

  return link != NULL ? link->request : NULL;
}

static void
request_link_free (gpointer data)
{
  RequestLink *link = data;

  if (link->server != NULL)
    g_hash_table_remove (link->server->live, link);
  link->request->msg = NULL;
  bs_request_unref (link->request);
  g_free (link);
}

/* Reply from inside the server (no handler ran): JSON error, status, body. */
static void
set_error_response (SoupServerMessage *msg, int code, const char *message)
{
  g_autoptr (GError) error = g_error_new_literal (BS_ERROR, code, message);
  g_autoptr (JsonNode) body = bs_error_body_new (error);
  gsize len = 0;
  g_autofree char *text = bs_json_to_string (body, &len);

  soup_server_message_set_status (msg, bs_error_http_status (error), NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, text, len);
}

static void
reject_too_large (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  g_autofree char *message = g_strdup_printf (
      "request body is larger than %" G_GSIZE_FORMAT " bytes", server->limits.max_body_bytes);

  request->too_large = TRUE;
  /* Keep reading (and discarding) the body so the client sees the 413, but
   * stop buffering it; the request deadline bounds how long that can take. */
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                "close");
  set_error_response (msg, BS_ERROR_PAYLOAD_TOO_LARGE, message);
}

static void record_access (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request,
                           guint status);

typedef struct
{
  GIOStream *stream;
  GBytes *response;
} StolenReply;

static void
stolen_reply_free (StolenReply *reply)
{
  g_clear_object (&reply->stream);
  g_clear_pointer (&reply->response, g_bytes_unref);
  g_free (reply);
}

static void
stolen_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  stolen_reply_free (user_data);
}

static void
stolen_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  StolenReply *reply = user_data;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  g_io_stream_close_async (reply->stream, G_PRIORITY_DEFAULT, NULL, stolen_closed, reply);
}

/* A complete response for a socket we answer ourselves. */
static GBytes *
direct_response (int code, const char *message, const char *request_id, gboolean retry_after)
{
  g_autoptr (GError) error = g_error_new_literal (BS_ERROR, code, message);
  g_autoptr (JsonNode) body = bs_error_body_new (error);
  gsize body_len = 0;
  g_autofree char *body_text = bs_json_to_string (body, &body_len);
  guint status = bs_error_http_status (error);
  GString *text = g_string_sized_new (256 + body_len);

  g_string_append_printf (text,
                          "HTTP/1.1 %u %s\r\n"
                          "Server: bookstore/" BS_VERSION "\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                          "X-Request-ID: %s\r\n"
                          "%s"
                          "Connection: close\r\n\r\n",
                          status, soup_status_get_phrase (status), body_len, request_id,
                          retry_after ? "Retry-After: 1\r\n" : "");
  g_string_append_len (text, body_text, (gssize) body_len);
  return g_string_free_to_bytes (text);
}

/* A declared body far over the limit: answer 413 at once and close, rather
 * than reading (and discarding) gigabytes first. We take the connection from
 * libsoup, so the access record is written here. */
static void
reject_huge_body (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  g_autofree char *message = g_strdup_printf (
      "request body is larger than %" G_GSIZE_FORMAT " bytes", server->limits.max_body_bytes);
  StolenReply *reply = g_new0 (StolenReply, 1);

  request->state = BS_REQUEST_DONE;
  record_access (server, msg, request, 413);
  reply->response
      = direct_response (BS_ERROR_PAYLOAD_TOO_LARGE, message, request->request_id, FALSE);
  reply->stream = soup_server_message_steal_connection (msg);
  g_output_stream_write_all_async (
      g_io_stream_get_output_stream (reply->stream), g_bytes_get_data (reply->response, NULL),
      g_bytes_get_size (reply->response), G_PRIORITY_DEFAULT, NULL, stolen_written, reply);
}

/* Before a handler runs, and before its body is read: a request that needs a
 * bearer token and has none that fits gets 401 and never reaches a handler. */
static void
check_token (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  GUri *uri = soup_server_message_get_uri (msg);
  const char *method = soup_server_message_get_method (msg);
  const char *authorization;

  if (server->auth == NULL || uri == NULL || method == NULL
      || !bs_auth_is_protected (server->auth, method, g_uri_get_path (uri)))
    return;
  authorization = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                "Authorization");
  if (bs_auth_check (server->auth, server->auth_counter, authorization, &request->auth_subject)
      == BS_AUTH_OK)
    return;
  /* the body, if any, is read and dropped, and the connection kept */
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "WWW-Authenticate",
                                "Bearer");
  set_error_response (msg, BS_ERROR_UNAUTHORIZED, "a valid bearer token is required");
}

static gboolean
is_write (const char *method)
{
  return g_strcmp0 (method, "POST") == 0 || g_strcmp0 (method, "PUT") == 0
         || g_strcmp0 (method, "PATCH") == 0 || g_strcmp0 (method, "DELETE") == 0;
}

/* The client's address: the peer's, or from a trusted proxy the one its
 * X-Forwarded-For names; worked out once per request, when first needed
 * (the rate limit, the access record). NULL when the peer is not on IP. */
static GInetAddress *
client_address (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  if (request->client_address == NULL && G_IS_INET_SOCKET_ADDRESS (remote))
    request->client_address = bs_client_address (
        server->proxies, g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)),
        soup_message_headers_get_list (soup_server_message_get_request_headers (msg),
                                       "X-Forwarded-For"));
  return request->client_address;
}

static const char *
client_text (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  GInetAddress *address = client_address (server, msg, request);

  if (request->client_text == NULL && address != NULL)
    request->client_text = g_inet_address_to_string (address);
  return request->client_text;
}

/* A write over its client's rate gets 429 and Retry-After before a handler
 * runs and before its body is read (unless the token check answered). */
static void
check_rate (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  GInetAddress *address;
  guint retry_after_s = 1;
  char retry_after[16];

  if (server->rate_limit == NULL || soup_server_message_get_status (msg) != SOUP_STATUS_NONE
      || !is_write (soup_server_message_get_method (msg)))
    return;
  address = client_address (server, msg, request);
  if (address == NULL || bs_rate_limit_is_exempt (server->rate_limit, address))
    return;
  if (bs_rate_limit_take (server->rate_limit, client_text (server, msg, request),
                          g_get_monotonic_time (), &retry_after_s))
    return;
  bs_metric_inc (server->rate_limited_total, NULL, 1);
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  g_snprintf (retry_after, sizeof retry_after, "%u", retry_after_s);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After",
                                retry_after);
  set_error_response (msg, BS_ERROR_TOO_MANY_REQUESTS,
                      "too many writes from this address; retry after Retry-After seconds");
}

static void
got_headers_cb (SoupServerMessage *msg, gpointer user_data)
{
  BsHttpServer *server = user_data;
  BsRequest *request = request_for (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  goffset length;

  if (request == NULL)
    return;
  request->started_us = g_get_monotonic_time ();
  request->request_id
      = bs_request_id_from_header (soup_message_headers_get_one (headers, "X-Request-ID"));
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Request-ID",
                                request->request_id);
  bs_request_start_trace (request, headers);
  /* libsoup closes after answering a request that says "Connection: close"
   * but does not say so in the response; a client pool that reuses
   * connections unless told (urllib3) would then send its next request
   * into a closing socket and get a reset (RFC 9112, 9.6) */
  if (soup_message_headers_header_contains (headers, "Connection", "close"))
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection",
                                  "close");

  length = soup_message_headers_get_content_length (headers);
  if (soup_message_headers_get_encoding (headers) != SOUP_ENCODING_CONTENT_LENGTH
      || (guint64) length <= server->limits.max_body_bytes)
    {
      check_token (server, msg, request);
      check_rate (server, msg, request);
      return;
    }
  /* Up to a bound, read and discard the body so that clients that send it
   * before reading (most do) see the 413; beyond it, do not wait for it. */
  if ((guint64) length <= BS_HTTP_DRAIN_LIMIT
      || soup_message_headers_get_expectations (headers) & SOUP_EXPECTATION_CONTINUE)
    reject_too_large (server, msg, request);
  else
    reject_huge_body (server, msg, request);
}

static void
got_chunk_cb (SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
  BsHttpServer *server = user_data;
  BsRequest *request = request_for (msg);

  if (request == NULL || request->too_large)
    return;
  request->body_bytes += g_bytes_get_size (chunk);
  if (request->body_bytes > server->limits.max_body_bytes)
    reject_too_large (server, msg, request);
}

static void
wrote_body_cb (SoupServerMessage *msg, gpointer user_data)
{
  BsRequest *request = request_for (msg);

  if (request != NULL)
    request->wrote_body = TRUE;
}

static void
request_started_cb (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  BsHttpServer *server = user_data;
  RequestLink *link = g_new0 (RequestLink, 1);

  link->server = server;
  link->request = bs_request_new (msg);
  g_hash_table_add (server->live, link);
  g_object_set_data_full (G_OBJECT (msg), REQUEST_DATA_KEY, link, request_link_free);
  g_signal_connect (msg, "got-headers", G_CALLBACK (got_headers_cb), server);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (got_chunk_cb), server);
  g_signal_connect (msg, "wrote-body", G_CALLBACK (wrote_body_cb), NULL);
}

static BsHttpStream *
stream_for (SoupServerMessage *msg)
{
  return bs_http_stream_from_address (soup_server_message_get_remote_address (msg));
}

/* A response went out on a kept-alive connection: the client has
 * request_timeout_ms to begin the next request (then as long again to send
 * it), or the connection is closed. */
static void
track_idle (BsHttpServer *server, SoupServerMessage *msg)
{
  BsHttpStream *stream = stream_for (msg);

  if (stream == NULL)
    return;
  if (server->draining)
    bs_http_stream_expire (stream);
  else if (bs_http_stream_is_idle (stream))
    bs_http_stream_set_deadline (stream, g_get_monotonic_time ()
                                             + (gint64) server->limits.request_timeout_ms * 1000);
}

static void
check_drained (BsHttpServer *server)
{
  GSourceFunc func = server->drained_func;

  if (!server->draining || server->in_flight > 0 || func == NULL)
    return;
  server->drained_func = NULL;
  func (server->drained_data);
}

static const char *
status_class (guint status)
{
  static const char *classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

  if (status >= 100 && status < 600)
    return classes[status / 100 - 1];
  return "unknown";
}

/* The method as a metric label: clients can send any token as a method, and
 * each distinct label value is a new series kept for the process's life. */
static const char *
method_label (const char *method)
{
  static const char *const known[]
      = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", NULL };

  for (const char *const *m = known; *m != NULL; m++)
    if (g_str_equal (method, *m))
      return *m;
  return "other";
}

/* Each route's series from the start (Prometheus' instrumentation guide:
 * avoid missing metrics): its duration histogram, and its request counter
 * for 2xx, 4xx and 5xx, so that the 5xx rate of a healthy service is 0 and
 * not "No data". A class's zero series carries the class's generic code
 * (RFC 9110: x00); the real codes come with the requests. */
static void
init_route_series (const char *method, const char *path_template, gpointer user_data)
{
  static const char *const classes[][2] = { { "2xx", "200" }, { "4xx", "400" }, { "5xx", "500" } };
  BsHttpServer *server = user_data;
  const char *m = method_label (method);

  for (gsize i = 0; i < G_N_ELEMENTS (classes); i++)
    bs_metric_init (server->requests_total,
                    (const char *const[]){ path_template, m, classes[i][0], classes[i][1], NULL });
  bs_metric_init (server->request_duration, (const char *const[]){ path_template, m, NULL });
}

/* The client's address for the access record: the peer's (worked out once
 * per connection), or, from a trusted proxy, the one X-Forwarded-For names. */
static const char *
client_of (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request)
{
  BsHttpStream *stream = stream_for (msg);

  if (stream == NULL)
    return NULL;
  if (request->client_text == NULL
      && (bs_address_set_get_n (server->proxies) == 0
          || soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                           "X-Forwarded-For")
                 == NULL))
    return bs_http_stream_get_peer (stream);
  return client_text (server, msg, request);
}

/* Metrics and the access record of one request, whichever way it ended. */
static void
record_access (BsHttpServer *server, SoupServerMessage *msg, BsRequest *request, guint status)
{
  GUri *uri = soup_server_message_get_uri (msg);
  /* libsoup may give up on a request before its line parsed: no method or URI */
  const char *method = soup_server_message_get_method (msg);
  const char *path = uri != NULL ? g_uri_get_path (uri) : NULL;
  const char *user_agent;
  const char *route = request->route_template;
  const char *client;
  char code[16];
  double seconds;

  if (method == NULL)
    method = "-";
  if (path == NULL)
    path = "-";
  if (route == NULL)
    {
      const BsRoute *r = NULL;
      g_autoptr (GHashTable) params = NULL;
      g_autofree char *allow = NULL;
      if (bs_router_match (server->router, method, path, &r, &params, &allow) != BS_ROUTE_NOT_FOUND)
        route = bs_route_get_template (r);
      else
        route = "unmatched";
    }
  seconds = request->started_us > 0
                ? (double) (g_get_monotonic_time () - request->started_us) / G_USEC_PER_SEC
                : 0;

  g_snprintf (code, sizeof code, "%u", status);
  bs_metric_inc (
      server->requests_total,
      (const char *const[]){ route, method_label (method), status_class (status), code, NULL }, 1);
  /* the request's trace as the exemplar (OpenMetrics): from a slow bucket
   * in a dashboard straight to `journalctl TRACE_ID=` */
  bs_metric_observe_exemplar (server->request_duration,
                              (const char *const[]){ route, method_label (method), NULL }, seconds,
                              request->trace.trace_id);

  user_agent
      = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "User-Agent");
  client = client_of (server, msg, request);
  bs_log_access (g_strcmp0 (user_agent, WATCHDOG_USER_AGENT) == 0 ? G_LOG_LEVEL_DEBUG
                                                                  : G_LOG_LEVEL_INFO,
                 request->request_id, &request->trace, method, path, status, seconds * 1000.0,
                 request->auth_subject, client);
}

static void
record_finished (BsHttpServer *server, SoupServerMessage *msg, gboolean aborted)
{
  BsRequest *request = request_for (msg);
  guint status = soup_server_message_get_status (msg);

  BsHttpStream *stream = stream_for (msg);

  if (request == NULL || request->state == BS_REQUEST_DONE)
    return;
  if (stream != NULL && bs_http_stream_was_rejected (stream)
      && request->state == BS_REQUEST_READING)
    {
      /* the guard refused it before a handler saw it; its record is the
       * refusal's (stream_rejected) */
      request->state = BS_REQUEST_DONE;
      return;
    }
  if (request->state == BS_REQUEST_HANDLING)
    {
      server->in_flight--;
      bs_metric_set (server->in_flight_gauge, NULL, server->in_flight);
    }
  request->state = BS_REQUEST_DONE;
  g_cancellable_cancel (request->cancellable);
  track_idle (server, msg);

  /* The client went away before the whole response reached it: nginx's
   * 499. libsoup turns a failed response write into a 500 of its own
   * making, which would page someone for every client that timed out. */
  if (!request->wrote_body && (aborted || status == 500))
    status = 499;
  record_access (server, msg, request, status);
  check_drained (server);
}

static void
request_finished_cb (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  record_finished (user_data, msg, FALSE);
}

static void
request_aborted_cb (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  record_finished (user_data, msg, TRUE);
}

static void
dispatch (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
          gpointer user_data)
{
  BsHttpServer *server = user_data;
  BsRequest *request = request_for (msg);
  const BsRoute *route = NULL;
  g_autoptr (GHashTable) params = NULL;
  g_autofree char *allow = NULL;
  g_autofree char *message = NULL;

  g_return_if_fail (request != NULL);
  request->state = BS_REQUEST_HANDLING;
  server->in_flight++;
  bs_metric_set (server->in_flight_gauge, NULL, server->in_flight);
  if (query != NULL)
    request->query = g_hash_table_ref (query);
  if (server->draining)
    bs_request_set_header (request, "Connection", "close");

  switch (bs_router_match (server->router, soup_server_message_get_method (msg), path, &route,
                           &params, &allow))
    {
      case BS_ROUTE_FOUND:
        request->route_template = bs_route_get_template (route);
        request->params = g_steal_pointer (&params);
        bs_route_invoke (route, request);
        break;
      case BS_ROUTE_METHOD_NOT_ALLOWED:
        request->route_template = bs_route_get_template (route);
        message = g_strdup_printf ("method %s is not allowed here; allowed: %s",
                                   soup_server_message_get_method (msg), allow);
        bs_request_set_header (request, "Allow", allow);
        bs_request_reply_error_literal (request, BS_ERROR_METHOD_NOT_ALLOWED, message);
        break;
      case BS_ROUTE_NOT_FOUND:
      default:
        message = g_strdup_printf ("no route for %s", path);
        bs_request_reply_error_literal (request, BS_ERROR_NOT_FOUND, message);
        break;
    }
}

/* Once a second: end connections whose request (or keep-alive wait) ran
 * past its deadline; give the heap back after a burst of connections. */
static gboolean
reaper_tick (gpointer user_data)
{
  BsHttpServer *server = user_data;
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (now >= bs_http_stream_get_deadline (key))
      bs_http_stream_expire (key);
  bs_heap_trim_check (&server->heap_trim, g_hash_table_size (server->connections), now);
  return G_SOURCE_CONTINUE;
}

static GBytes *
stream_rejected (BsHttpStream *stream, int code, const char *message, const char *method,
                 const char *target, gpointer user_data)
{
  BsHttpServer *server = user_data;
  g_autofree char *request_id = bs_request_id_from_header (NULL);
  g_autoptr (GError) error = g_error_new_literal (BS_ERROR, code, message);
  guint status = bs_error_http_status (error);
  char status_code[16];

  g_snprintf (status_code, sizeof status_code, "%u", status);
  bs_metric_inc (server->requests_total,
                 (const char *const[]){ "unmatched", method_label (method), status_class (status),
                                        status_code, NULL },
                 1);
  bs_log_access (G_LOG_LEVEL_INFO, request_id, NULL, method, target, status, 0.0, NULL,
                 bs_http_stream_get_peer (stream));
  return direct_response (code, message, request_id, FALSE);
}

static void
stream_closed (BsHttpStream *stream, gpointer user_data)
{
  BsHttpServer *server = user_data;

  if (g_hash_table_remove (server->connections, stream))
    g_atomic_int_add (server->open_total, -1);
  bs_metric_set (server->connections_open, NULL, g_hash_table_size (server->connections));
}

static void
refused_closed (gpointer user_data)
{
  BsHttpServer *server = user_data;

  server->refused_lingering--;
}

static void
refuse_connection (BsHttpServer *server, GSocket *socket)
{
  g_autofree char *request_id = bs_request_id_from_header (NULL);
  g_autoptr (GBytes) response = NULL;

  bs_metric_inc (server->connections_refused, NULL, 1);
  if (!server->refusing)
    g_warning ("%u connections open (HTTP_MAX_CONNECTIONS): refusing new ones with 503",
               server->limits.max_connections);
  server->refusing = TRUE;
  if (server->tls != NULL)
    {
      /* a 503 would need a handshake first: the cost refusing avoids */
      g_socket_close (socket, NULL);
      return;
    }
  response = direct_response (BS_ERROR_UNAVAILABLE, "too many connections; retry shortly",
                              request_id, TRUE);
  /* a storm of refused connections must not hold descriptors for long:
   * past a bound, answer and close without lingering */
  server->refused_lingering++;
  bs_http_linger_start (
      socket, response,
      server->refused_lingering > BS_HTTP_REFUSED_LINGER_MAX ? 0 : BS_HTTP_REFUSED_LINGER_MS,
      refused_closed, server);
}

/* Refusing costs the loop too: clients that reconnect at once (wrk does)
 * took admitted throughput from 6,400 to 630 requests/s. So at most
 * BS_HTTP_REFUSE_BUDGET refusals per BS_HTTP_REFUSE_WINDOW_MS; past that,
 * newcomers wait in the listen backlog until the window ends. */
static void
refuse_with_budget (BsHttpServer *server, GSocket *socket)
{
  gint64 now = g_get_monotonic_time ();
  gint64 window_us = (gint64) BS_HTTP_REFUSE_WINDOW_MS * 1000;

  if (now - server->refuse_window_us >= window_us)
    {
      server->refuse_window_us = now;
      server->refused_in_window = 0;
    }
  refuse_connection (server, socket);
  if (++server->refused_in_window >= server->refuse_budget && server->listener != NULL)
    bs_http_listener_pause (server->listener,
                            (guint) ((server->refuse_window_us + window_us - now + 999) / 1000));
}

typedef struct
{
  BsHttpServer *server; /* valid while the stream is open */
  GSocketAddress *local;
  GSocketAddress *remote;
} Handshake;

static void
handshake_free (Handshake *handshake)
{
  g_object_unref (handshake->local);
  g_object_unref (handshake->remote);
  g_free (handshake);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Handshake, handshake_free)

static void
handshaken (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (Handshake) handshake = user_data;
  BsHttpStream *stream = BS_HTTP_STREAM (source);
  g_autoptr (GError) error = NULL;

  if (bs_http_stream_handshake_finish (stream, result, &error))
    {
      if (!bs_http_stream_is_closed (stream))
        soup_server_accept_iostream (handshake->server->soup, G_IO_STREAM (stream),
                                     handshake->local, handshake->remote, NULL);
      return;
    }
  if (bs_http_stream_is_closed (stream)) /* the server is gone, or closing */
    return;
  bs_metric_inc (handshake->server->tls_handshake_failures, NULL, 1);
  g_debug ("TLS handshake failed: %s", error->message);
  bs_http_stream_force_close (stream);
}

/* HTTPS: the handshake first, then libsoup. */
static void
start_tls (BsHttpServer *server, BsHttpStream *stream, GSocketAddress *local,
           GSocketAddress *remote)
{
  g_autoptr (GTlsCertificate) certificate = bs_tls_identity_get_certificate (server->tls);
  g_autoptr (GError) error = NULL;
  Handshake *handshake;

  if (!bs_http_stream_start_tls (stream, certificate, &error))
    {
      g_warning ("cannot start TLS on a connection: %s", error->message);
      bs_http_stream_force_close (stream);
      return;
    }
  handshake = g_new0 (Handshake, 1);
  handshake->server = server;
  handshake->local = g_object_ref (local);
  handshake->remote = g_object_ref (remote);
  bs_http_stream_handshake_async (stream, handshaken, handshake);
}

static void
accept_connection (GSocket *accepted, gpointer user_data)
{
  BsHttpServer *server = user_data;
  g_autoptr (GSocket) socket = accepted; /* ours to unref */
  g_autoptr (BsHttpStream) stream = NULL;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GSocketAddress) remote = NULL;

  if ((guint) g_atomic_int_get (server->open_total) >= server->limits.max_connections)
    {
      refuse_with_budget (server, socket);
      return;
    }
  if (server->refusing)
    g_message ("accepting connections again");
  server->refusing = FALSE;
  local = g_socket_get_local_address (socket, NULL);
  remote = g_socket_get_remote_address (socket, NULL);
  if (local == NULL || remote == NULL)
    return; /* gone already */
  stream = bs_http_stream_new (socket, &server->hooks, server);
  bs_http_stream_set_request_timeout (stream, server->limits.request_timeout_ms);
  bs_http_stream_set_deadline (stream, g_get_monotonic_time ()
                                           + (gint64) server->limits.request_timeout_ms * 1000);
  bs_http_stream_attach_to_address (stream, remote);
  if (G_IS_INET_SOCKET_ADDRESS (remote))
    bs_http_stream_set_peer (stream,
                             g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  g_hash_table_add (server->connections, g_object_ref (stream));
  g_atomic_int_inc (server->open_total);
  bs_metric_set (server->connections_open, NULL, g_hash_table_size (server->connections));
  bs_heap_trim_note (&server->heap_trim, g_hash_table_size (server->connections));
  if (server->tls != NULL)
    start_tls (server, stream, local, remote);
  else
    soup_server_accept_iostream (server->soup, G_IO_STREAM (stream), local, remote, NULL);
}

static void
accept_paused (gboolean paused, const char *error, gpointer user_data)
{
  BsHttpServer *server = user_data;

  if (!paused)
    return;
  bs_metric_inc (server->accept_pauses, NULL, 1);
  g_warning ("accept failed (%s): not accepting for %u ms; open connections are served", error,
             BS_HTTP_ACCEPT_PAUSE_MS);
}

/* libsoup keeps connections alive only while it has a listener of its own
 * (soup-server.c, request_finished). Ours accepts for it, so give it one
 * that never fires: one end of a socket pair whose other end stays silent. */
static void
keep_alive_enable (BsHttpServer *server)
{
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    {
      g_warning ("socketpair: %s: connections will not be kept alive", g_strerror (errno));
      return;
    }
  server->keepalive_socket[0] = g_socket_new_from_fd (fds[0], NULL);
  server->keepalive_socket[1] = g_socket_new_from_fd (fds[1], NULL);
  if (server->keepalive_socket[0] != NULL)
    soup_server_listen_socket (server->soup, server->keepalive_socket[0], 0, NULL);
}

BsHttpServer *
bs_http_server_new (BsRouter *router, BsMetrics *metrics, const BsHttpLimits *limits)
{
  BsHttpServer *server = g_new0 (BsHttpServer, 1);

  server->router = router;
  if (limits != NULL)
    server->limits = *limits;
  else
    bs_http_limits_init_default (&server->limits);
  server->live = g_hash_table_new (NULL, NULL);
  server->connections = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  server->open_total = &server->open_own;
  server->refuse_budget = BS_HTTP_REFUSE_BUDGET;
  server->hooks.rejected = stream_rejected;
  server->hooks.closed = stream_closed;
  server->soup = soup_server_new ("server-header", "bookstore/" BS_VERSION " ", NULL);

  server->requests_total = bs_metrics_counter (
      metrics, "http_requests_total", "HTTP requests answered, by route template and status.",
      (const char *const[]){ "handler", "method", "status_class", "code", NULL });
  server->request_duration = bs_metrics_histogram (
      metrics, "http_request_duration_seconds",
      "Time from request headers to the end of the response, by route template.",
      (const char *const[]){ "handler", "method", NULL }, bs_metrics_latency_buckets,
      bs_metrics_n_latency_buckets);
  server->in_flight_gauge = bs_metrics_gauge (
      metrics, "http_requests_in_flight", "Requests handed to a handler and not finished.", NULL);
  server->connections_open
      = bs_metrics_gauge (metrics, "http_connections_open", "Client connections open.", NULL);
  server->connections_refused = bs_metrics_counter (
      metrics, "http_connections_refused_total",
      "Connections answered 503 and closed at once: HTTP_MAX_CONNECTIONS were open.", NULL);
  server->accept_pauses = bs_metrics_counter (
      metrics, "http_accept_pauses_total",
      "Times accepting paused for 500 ms after accept() failed (EMFILE and the like).", NULL);
  bs_metric_set (server->connections_open, NULL, 0);
  bs_metric_inc (server->connections_refused, NULL, 0);
  bs_metric_inc (server->accept_pauses, NULL, 0);

  g_signal_connect (server->soup, "request-started", G_CALLBACK (request_started_cb), server);
  g_signal_connect (server->soup, "request-finished", G_CALLBACK (request_finished_cb), server);
  g_signal_connect (server->soup, "request-aborted", G_CALLBACK (request_aborted_cb), server);
  soup_server_add_handler (server->soup, NULL, dispatch, server, NULL);
  keep_alive_enable (server);
  server->reaper_id = bs_timeout_add_seconds (1, reaper_tick, server);
  return server;
}

void
bs_http_server_free (BsHttpServer *server)
{
  GHashTableIter iter;
  gpointer key;

  if (server == NULL)
    return;
  g_clear_handle_id (&server->reaper_id, bs_source_remove);
  g_clear_pointer (&server->listener, bs_http_listener_free);
  g_hash_table_iter_init (&iter, server->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    bs_http_stream_force_close (key);
  g_hash_table_iter_init (&iter, server->live);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    ((RequestLink *) key)->server = NULL;
  g_signal_handlers_disconnect_by_data (server->soup, server);
  soup_server_disconnect (server->soup);
  g_clear_object (&server->soup);
  g_clear_object (&server->listen_socket);
  g_hash_table_unref (server->live);
  g_hash_table_unref (server->connections);
  g_clear_object (&server->keepalive_socket[0]);
  g_clear_object (&server->keepalive_socket[1]);
  bs_router_free (server->router);
  g_clear_pointer (&server->auth, bs_auth_unref);
  g_clear_pointer (&server->rate_limit, bs_rate_limit_unref);
  g_clear_pointer (&server->proxies, bs_address_set_unref);
  g_clear_pointer (&server->tls, bs_tls_identity_unref);
  g_free (server);
}

/* socket()/bind()/listen() ourselves: libsoup's backlog is 10 and GLib
 * resets SO_REUSEPORT. */
static GSocket *
listen_socket_new (const char *address, guint16 port, guint backlog, GError **error)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr (GSocketAddress) sockaddr = NULL;
  struct sockaddr_storage storage;
  int fd;
  int one = 1;
  GSocket *gsocket;

  if (inet == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "\"%s\" is not an IP address", address);
      return NULL;
    }
  sockaddr = g_inet_socket_address_new (inet, port);
  if (!g_socket_address_to_native (sockaddr, &storage, sizeof storage, error))
    return NULL;

  fd = socket (storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "socket: %s",
                   g_strerror (saved));
      return NULL;
    }
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, (struct sockaddr *) &storage, g_socket_address_get_native_size (sockaddr)) < 0
      || listen (fd, (int) backlog) < 0)
    {
      int saved = errno;
      close (fd);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "listening on %s:%u: %s",
                   address, port, g_strerror (saved));
      return NULL;
    }
  gsocket = g_socket_new_from_fd (fd, error);
  if (gsocket == NULL)
    close (fd);
  return gsocket;
}

static gboolean
listen_on (BsHttpServer *server, GSocket *socket_in, gboolean socket_activated, GError **error)
{
  g_autoptr (GSocket) socket = socket_in;
  g_autoptr (GSocketAddress) local = NULL;

  server->socket_activated = socket_activated;
  bs_router_foreach (server->router, init_route_series, server); /* every route is added by now */
  g_socket_set_blocking (socket, FALSE);
  local = g_socket_get_local_address (socket, error);
  if (local == NULL)
    return FALSE;
  server->listener = bs_http_listener_new (socket, accept_connection, accept_paused, server);
  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  server->listen_socket = g_steal_pointer (&socket);
  return TRUE;
}

gboolean
bs_http_server_listen (BsHttpServer *server, const char *address, guint16 port, GError **error)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GError) local_error = NULL;
  gboolean socket_activated;

  socket = bs_systemd_take_listen_socket (&local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  socket_activated = socket != NULL;
  if (socket == NULL)
    socket = listen_socket_new (address, port, server->limits.listen_backlog, error);
  if (socket == NULL)
    return FALSE;
  return listen_on (server, g_steal_pointer (&socket), socket_activated, error);
}

gboolean
bs_http_server_listen_like (BsHttpServer *server, BsHttpServer *first, GError **error)
{
  int fd;
  GSocket *socket;

  g_return_val_if_fail (first->listen_socket != NULL, FALSE);
  fd = fcntl (g_socket_get_fd (first->listen_socket), F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "dup: %s", g_strerror (saved));
      return FALSE;
    }
  socket = g_socket_new_from_fd (fd, error);
  if (socket == NULL)
    {
      close (fd);
      return FALSE;
    }
  return listen_on (server, socket, first->socket_activated, error);
}

guint16
bs_http_server_get_port (BsHttpServer *server)
{
  return server->port;
}

gboolean
bs_http_server_is_socket_activated (BsHttpServer *server)
{
  return server->socket_activated;
}

/* At a stop, a kept-alive connection waiting for its next request is
 * closed at once rather than at its deadline. */
static void
expire_idle_connections (BsHttpServer *server)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, server->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (bs_http_stream_is_idle (key))
      bs_http_stream_expire (key);
}

void
bs_http_server_stop_accepting (BsHttpServer *server)
{
  if (server->draining)
    return;
  server->draining = TRUE;
  check_drained (server);
  if (server->listener != NULL)
    bs_http_listener_stop (server->listener);
  expire_idle_connections (server);
  if (server->listen_socket == NULL)
    return;
  if (server->socket_activated)
    {
      /* systemd holds the same listening socket for the next start: leave it
       * listening and just drop our descriptor. */
      g_socket_close (server->listen_socket, NULL);
      return;
    }
  /* shutdown() on a listening socket makes new connects be refused, while
   * the clients already accepted are left alone. */
  shutdown (g_socket_get_fd (server->listen_socket), SHUT_RD);
}

void
bs_http_server_set_drained_func (BsHttpServer *server, GSourceFunc func, gpointer user_data)
{
  server->drained_func = func;
  server->drained_data = user_data;
}

void
bs_http_server_share_limits (BsHttpServer *server, BsHttpServer *first, guint n_loops)
{
  server->open_total = first->open_total;
  server->refuse_budget = MAX (BS_HTTP_REFUSE_BUDGET / MAX (n_loops, 1), 1);
}

void
bs_http_server_set_auth (BsHttpServer *server, BsAuth *auth, BsMetrics *metrics)
{
  g_clear_pointer (&server->auth, bs_auth_unref);
  server->auth = bs_auth_ref (auth);
  server->auth_counter = bs_auth_metrics_new (metrics);
}

void
bs_http_server_set_rate_limit (BsHttpServer *server, BsRateLimit *limit, BsMetrics *metrics)
{
  g_clear_pointer (&server->rate_limit, bs_rate_limit_unref);
  server->rate_limit = limit != NULL ? bs_rate_limit_ref (limit) : NULL;
  server->rate_limited_total = bs_metrics_counter (
      metrics, "http_rate_limited_total",
      "Writes refused with 429 because their client was over RATE_LIMIT_WRITES.", NULL);
  bs_metric_init (server->rate_limited_total, NULL);
}

void
bs_http_server_set_trusted_proxies (BsHttpServer *server, BsAddressSet *proxies)
{
  g_clear_pointer (&server->proxies, bs_address_set_unref);
  server->proxies = proxies != NULL ? bs_address_set_ref (proxies) : NULL;
}

void
bs_http_server_set_tls (BsHttpServer *server, BsTlsIdentity *identity, BsMetrics *metrics)
{
  g_clear_pointer (&server->tls, bs_tls_identity_unref);
  server->tls = bs_tls_identity_ref (identity);
  server->tls_handshake_failures = bs_metrics_counter (
      metrics, "http_tls_handshake_failures_total",
      "HTTPS connections closed because their TLS handshake failed or took too long.", NULL);
  bs_metric_init (server->tls_handshake_failures, NULL);
}

guint
bs_http_server_get_in_flight (BsHttpServer *server)
{
  return server->in_flight;
}
