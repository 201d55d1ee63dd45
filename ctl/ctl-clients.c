/* ctl-clients.c: Redis (hiredis, blocking with socket timeouts), PostgreSQL
 * (libpq: connect_timeout, then each statement sent and awaited with
 * poll() against a deadline, cancelled when it passes) and HTTP (libsoup,
 * the call cancelled at its deadline). */
#include "ctl-clients.h"

#include "bs-error.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

redisReply *
ctl_redis_command (redisContext *redis, GError **error, const char *const *argv)
{
  int argc = 0;

  while (argv[argc] != NULL)
    argc++;
  return bs_redis_blocking_command (redis, argc, argv, error);
}

redisReply *
ctl_redis_field (redisReply *array, const char *key)
{
  if (array == NULL || array->type != REDIS_REPLY_ARRAY)
    return NULL;
  for (size_t i = 0; i + 1 < array->elements; i += 2)
    if (array->element[i]->type == REDIS_REPLY_STRING && strcmp (array->element[i]->str, key) == 0)
      return array->element[i + 1];
  return NULL;
}

redisContext *
ctl_redis_connect (Ctl *ctl, char **who, char **where, GError **error)
{
  g_auto (BsConfigRedis) config = { 0 };
  g_autofree char *address = NULL;
  g_autoptr (redisContext) redis = NULL;
  g_autoptr (redisReply) reply = NULL;

  if (!ctl_config_redis (ctl->config, &config, who, error))
    return NULL;
  redis = bs_redis_blocking_connect (&config, ctl->timeout_ms, &address, error);
  if (redis != NULL)
    reply = ctl_redis (redis, error, "PING");
  if (reply == NULL)
    {
      g_prefix_error (error, "Redis%s%s as %s: ", address != NULL ? " at " : "",
                      address != NULL ? address : "", *who);
      if (error != NULL && *error != NULL)
        (*error)->code = BS_ERROR_UNAVAILABLE;
      return NULL;
    }
  if (where != NULL)
    *where = g_steal_pointer (&address);
  return g_steal_pointer (&redis);
}

static const char *
service_dsn (Ctl *ctl, CtlService service)
{
  return ctl_config_get (ctl->config, service,
                         service == CTL_SERVICE_BOOKS ? "BOOKS_DB_DSN" : "DATABASE_URL");
}

/* dbname first: the DSN expanded; the later keywords override it */
static void
pg_params (Ctl *ctl, CtlService service, const char **keys, const char **values, char *timeout_s,
           char *options)
{
  g_snprintf (timeout_s, 16, "%u", MAX (2, (ctl->timeout_ms + 999) / 1000));
  g_snprintf (options, 64, "-c statement_timeout=%u", ctl->timeout_ms);
  keys[0] = "dbname", values[0] = service_dsn (ctl, service);
  keys[1] = "connect_timeout", values[1] = timeout_s;
  keys[2] = "options", values[2] = options;
  keys[3] = "application_name", values[3] = "bookstorectl";
  keys[4] = NULL, values[4] = NULL;
}

PGPing
ctl_pg_ping (Ctl *ctl, CtlService service)
{
  const char *keys[5], *values[5];
  char timeout_s[16], options[64];

  pg_params (ctl, service, keys, values, timeout_s, options);
  return PQpingParams (keys, values, 1);
}

PGconn *
ctl_pg_connect (Ctl *ctl, CtlService service, GError **error)
{
  const char *keys[5], *values[5];
  char timeout_s[16], options[64];
  g_autoptr (PGconn) conn = NULL;

  pg_params (ctl, service, keys, values, timeout_s, options);
  conn = PQconnectdbParams (keys, values, 1);
  if (conn == NULL || PQstatus (conn) != CONNECTION_OK)
    {
      g_autofree char *message = g_strdup (conn != NULL ? PQerrorMessage (conn) : "out of memory");

      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "cannot connect to the %s database: %s",
                   ctl_service_name (service), g_strstrip (message));
      return NULL;
    }
  return g_steal_pointer (&conn);
}

/* Waits for the socket until the deadline (monotonic µs); FALSE at it. */
static gboolean
pg_wait (PGconn *conn, short events, gint64 deadline)
{
  struct pollfd fd = { PQsocket (conn), events, 0 };
  gint64 left = deadline - g_get_monotonic_time ();
  int n;

  if (left <= 0)
    return FALSE;
  do
    n = poll (&fd, 1, (int) MAX (1, left / 1000));
  while (n < 0 && errno == EINTR);
  return n > 0;
}

static PGresult *
pg_failed (PGconn *conn, GError **error)
{
  g_autofree char *message = g_strdup (PQerrorMessage (conn));

  g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "PostgreSQL: %s", g_strstrip (message));
  return NULL;
}

PGresult *
ctl_pg_exec (Ctl *ctl, PGconn *conn, const char *sql, int n_params, const char *const *params,
             GError **error)
{
  /* statement_timeout bounds the server's work; this bounds the wait for a
   * server that stopped answering at all */
  gint64 deadline = g_get_monotonic_time () + (gint64) ctl->timeout_ms * 1000 + G_USEC_PER_SEC;
  g_autoptr (PGresult) result = NULL;
  g_autofree char *message = NULL;
  PGresult *next;
  ExecStatusType status;

  if (!PQsendQueryParams (conn, sql, n_params, NULL, params, NULL, NULL, 0))
    return pg_failed (conn, error);
  while (PQisBusy (conn))
    {
      if (!pg_wait (conn, POLLIN, deadline))
        {
          g_set_error (error, BS_ERROR, BS_ERROR_TIMEOUT, "PostgreSQL did not answer within %u ms",
                       ctl->timeout_ms);
          return NULL;
        }
      if (!PQconsumeInput (conn))
        return pg_failed (conn, error);
    }
  result = PQgetResult (conn);
  while ((next = PQgetResult (conn)) != NULL)
    PQclear (next);
  status = PQresultStatus (result);
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
    return g_steal_pointer (&result);
  message = g_strdup (PQresultErrorMessage (result));
  g_set_error (error, BS_ERROR, BS_ERROR_INTERNAL, "PostgreSQL: %s", g_strstrip (message));
  return NULL;
}

typedef struct
{
  GBytes *body;
  GError *error;
  gboolean done;
} HttpCall;

static void
http_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HttpCall *call = user_data;

  call->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &call->error);
  call->done = TRUE;
}

static gboolean
http_deadline (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
accept_loopback_certificate (SoupMessage *msg, GTlsCertificate *certificate,
                             GTlsCertificateFlags errors, gpointer user_data)
{
  const char *host = g_uri_get_host (soup_message_get_uri (msg));

  return g_strcmp0 (host, "127.0.0.1") == 0 || g_strcmp0 (host, "::1") == 0
         || g_strcmp0 (host, "localhost") == 0;
}

guint
ctl_http_get (Ctl *ctl, const char *url, const char *token, char **body, char **server,
              GError **error)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GSource) timer = g_timeout_source_new (ctl->timeout_ms);
  HttpCall call = { 0 };

  msg = soup_message_new ("GET", url);
  if (msg == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "not a URL: %s", url);
      return 0;
    }
  g_main_context_push_thread_default (context);
  /* no proxy: the services are reached directly, whatever http_proxy says */
  session = soup_session_new_with_options ("timeout", (ctl->timeout_ms + 999) / 1000, "user-agent",
                                           "bookstorectl", "proxy-resolver", NULL, NULL);
  if (token != NULL)
    {
      g_autofree char *value = g_strconcat ("Bearer ", token, NULL);

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
    }
  else
    g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_loopback_certificate), NULL);
  g_source_set_callback (timer, http_deadline, cancellable, NULL);
  g_source_attach (timer, context);
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, cancellable, http_done,
                                    &call);
  while (!call.done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timer);
  g_clear_object (&session);
  g_main_context_pop_thread_default (context);
  if (call.body == NULL)
    {
      if (g_error_matches (call.error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_set_error (error, BS_ERROR, BS_ERROR_TIMEOUT, "no answer within %u ms", ctl->timeout_ms);
      else
        g_propagate_error (error, g_steal_pointer (&call.error));
      g_clear_error (&call.error);
      return 0;
    }
  if (body != NULL)
    *body = g_strndup (g_bytes_get_data (call.body, NULL), g_bytes_get_size (call.body));
  if (server != NULL)
    *server = g_strdup (
        soup_message_headers_get_one (soup_message_get_response_headers (msg), "Server"));
  g_bytes_unref (call.body);
  return soup_message_get_status (msg);
}
