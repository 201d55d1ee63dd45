/* bs-http-client.c: SoupSession with a per-call deadline (pitfall 12: the
 * session's own timeout is per I/O, not per call) and enough connections
 * per host (pitfall 11: the default is 2). */
#include "bs-http-client.h"

#include "bs-error.h"
#include "bs-tls.h"
#include "bs-loop.h"

#include <string.h>

/* Below the idle limit of our own servers (HTTP_REQUEST_TIMEOUT_MS, 15 s),
 * so the client drops an idle connection before the server does. */
#define IDLE_TIMEOUT_S 10
#define READ_CHUNK 16384

struct _BsHttpClient
{
  SoupSession *session;
  char *base_url; /* without a trailing '/' */
};

/* A call's task is returned exactly once: by libsoup's answer, or by the
 * deadline or the caller's cancellation, whichever comes first. libsoup
 * 3.2.3 does not always finish a cancelled message (one waiting for a
 * connection is not looked at again until a connection frees up), so a
 * deadline that waited for libsoup's callback would not be one. */
typedef struct
{
  GTask *task;           /* not a reference: the task owns this */
  GMainContext *context; /* where the call was made, and is finished */
  SoupMessage *msg;
  GCancellable *call_cancellable; /* cancelled by the deadline or by the caller's */
  GCancellable *caller_cancellable;
  gulong caller_handler;
  guint deadline_id;
  guint timeout_ms;
  gboolean returned;
  char *url;
  GInputStream *body_stream;
  GByteArray *body; /* read so far, at most BS_HTTP_CLIENT_MAX_BODY */
} Call;

static void
call_free (Call *call)
{
  g_clear_pointer (&call->context, g_main_context_unref);
  if (call->caller_handler != 0)
    g_cancellable_disconnect (call->caller_cancellable, call->caller_handler);
  g_clear_object (&call->caller_cancellable);
  g_clear_object (&call->call_cancellable);
  g_clear_object (&call->msg);
  g_clear_object (&call->body_stream);
  g_clear_pointer (&call->body, g_byte_array_unref);
  g_free (call->url);
  g_free (call);
}

void
bs_http_response_free (BsHttpResponse *response)
{
  if (response == NULL)
    return;
  g_clear_pointer (&response->body, g_bytes_unref);
  g_clear_pointer (&response->headers, soup_message_headers_unref);
  g_free (response);
}

static gboolean
check_base_url (const char *config_name, const char *base_url, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GUri) uri = g_uri_parse (base_url, SOUP_HTTP_URI_FLAGS, &local_error);
  const char *scheme;

  if (uri == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s=\"%s\" is not a URL: %s", config_name,
                   base_url, local_error->message);
      return FALSE;
    }
  scheme = g_uri_get_scheme (uri);
  if ((g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL
      || g_uri_get_userinfo (uri) != NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s=\"%s\" is invalid: expected http://host[:port][/prefix]", config_name,
                   base_url);
      return FALSE;
    }
  return TRUE;
}

BsHttpClient *
bs_http_client_new (const char *config_name, const char *base_url, const char *user_agent,
                    guint max_conns, GError **error)
{
  BsHttpClient *client;
  gsize len;

  if (!check_base_url (config_name, base_url, error))
    return NULL;
  client = g_new0 (BsHttpClient, 1);
  len = strlen (base_url);
  while (len > 0 && base_url[len - 1] == '/')
    len--;
  client->base_url = g_strndup (base_url, len);
  max_conns = MAX (max_conns, 1);
  client->session = soup_session_new_with_options (
      "max-conns-per-host", max_conns, "max-conns", max_conns * 2, "idle-timeout", IDLE_TIMEOUT_S,
      "timeout", 0, "user-agent", user_agent, "proxy-resolver", NULL, NULL);
  return client;
}

void
bs_http_client_free (BsHttpClient *client)
{
  if (client == NULL)
    return;
  soup_session_abort (client->session);
  g_clear_object (&client->session);
  g_free (client->base_url);
  g_free (client);
}

gboolean
bs_http_client_set_ca_file (BsHttpClient *client, const char *variable, const char *ca_file,
                            GError **error)
{
  g_autoptr (GTlsDatabase) database = NULL;

  if (ca_file == NULL || *ca_file == '\0')
    return TRUE; /* the system's trust store, libsoup's default */
  database = bs_tls_database_new (variable, ca_file, error);
  if (database == NULL)
    return FALSE;
  g_object_set (client->session, "tls-database", database, NULL);
  return TRUE;
}

const char *
bs_http_client_get_base_url (BsHttpClient *client)
{
  return client->base_url;
}

/* Ends the call: its task returns @error (owned), or the response when
 * @error is NULL. Nothing once it has ended already. */
static void
call_return (Call *call, GError *error)
{
  BsHttpResponse *response;

  if (call->returned)
    {
      g_clear_error (&error);
      return;
    }
  call->returned = TRUE;
  g_clear_handle_id (&call->deadline_id, bs_source_remove);
  if (call->caller_handler != 0) /* from here on, the task may go at any time */
    g_cancellable_disconnect (call->caller_cancellable, call->caller_handler);
  call->caller_handler = 0;
  if (error != NULL)
    {
      g_task_return_error (call->task, error);
      return;
    }
  response = g_new0 (BsHttpResponse, 1);
  response->status = soup_message_get_status (call->msg);
  response->body = g_byte_array_free_to_bytes (g_steal_pointer (&call->body));
  response->headers = soup_message_headers_ref (soup_message_get_response_headers (call->msg));
  g_task_return_pointer (call->task, response, (GDestroyNotify) bs_http_response_free);
}

static gboolean
deadline_reached (gpointer user_data)
{
  Call *call = user_data;

  call->deadline_id = 0;
  g_cancellable_cancel (call->call_cancellable);
  call_return (call, g_error_new (BS_ERROR, BS_ERROR_TIMEOUT, "%s: no answer within %u ms",
                                  call->url, call->timeout_ms));
  return G_SOURCE_REMOVE;
}

static gboolean
cancel_call (gpointer user_data)
{
  Call *call = g_task_get_task_data (G_TASK (user_data));

  g_cancellable_cancel (call->call_cancellable);
  call_return (call, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "call cancelled"));
  return G_SOURCE_REMOVE;
}

/* Not finished right here, but from the call's own loop: finishing the call
 * can free it, g_cancellable_disconnect() from inside this signal would
 * deadlock, and the caller's cancellable may be cancelled from any thread. */
static void
caller_cancelled (GCancellable *caller, gpointer user_data)
{
  Call *call = g_task_get_task_data (G_TASK (user_data));

  bs_invoke_on (call->context, cancel_call, g_object_ref (user_data), g_object_unref);
}

/* The transfer failed: say how, in our terms. */
static void
return_transport_error (GTask *task, GError *error)
{
  Call *call = g_task_get_task_data (task);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    call_return (call, g_error_copy (error));
  else
    call_return (call,
                 g_error_new (BS_ERROR, BS_ERROR_UNAVAILABLE, "%s: %s", call->url, error->message));
}

static void read_more (GTask *task);

static void
chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Call *call = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) chunk
      = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  gsize len = 0;
  gconstpointer data;

  if (call->returned)
    return; /* the deadline or the caller ended it */
  if (chunk == NULL)
    {
      return_transport_error (task, error);
      return;
    }
  data = g_bytes_get_data (chunk, &len);
  if (len == 0)
    {
      call_return (call, NULL);
      return;
    }
  if (call->body->len + len > BS_HTTP_CLIENT_MAX_BODY)
    {
      call_return (call,
                   g_error_new (BS_ERROR, BS_ERROR_BAD_GATEWAY, "%s: answer larger than %d bytes",
                                call->url, BS_HTTP_CLIENT_MAX_BODY));
      return;
    }
  g_byte_array_append (call->body, data, len);
  read_more (g_steal_pointer (&task));
}

/* Read the body in chunks, refusing more than BS_HTTP_CLIENT_MAX_BODY. */
static void
read_more (GTask *task)
{
  Call *call = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (call->body_stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   call->call_cancellable, chunk_read, task);
}

static void
sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  Call *call = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;

  call->body_stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (call->body_stream == NULL || call->returned)
    {
      if (call->body_stream == NULL)
        return_transport_error (task, error);
      g_object_unref (task);
      return;
    }
  call->body = g_byte_array_new ();
  read_more (task);
}

void
bs_http_client_request_async (BsHttpClient *client, const char *method, const char *path,
                              const char *request_id, const char *const *headers,
                              const char *content_type, GBytes *body, guint timeout_ms,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  SoupMessageHeaders *request_headers;
  Call *call;

  g_return_if_fail (path != NULL && path[0] == '/');

  g_task_set_source_tag (task, bs_http_client_request_async);
  /* the call reports cancellation itself, with the right error */
  g_task_set_check_cancellable (task, FALSE);
  call = g_new0 (Call, 1);
  call->task = task;
  call->context = g_main_context_ref_thread_default ();
  g_task_set_task_data (task, call, (GDestroyNotify) call_free);
  call->url = g_strconcat (client->base_url, path, NULL);
  call->timeout_ms = timeout_ms;
  call->msg = soup_message_new (method, call->url);
  if (call->msg == NULL)
    {
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_INTERNAL, "invalid URL %s", call->url);
      return;
    }
  request_headers = soup_message_get_request_headers (call->msg);
  soup_message_headers_replace (request_headers, "Accept", "application/json");
  if (request_id != NULL)
    soup_message_headers_replace (request_headers, "X-Request-ID", request_id);
  for (gsize i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    soup_message_headers_replace (request_headers, headers[i], headers[i + 1]);
  if (body != NULL)
    soup_message_set_request_body_from_bytes (call->msg, content_type, body);

  call->call_cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      call->caller_cancellable = g_object_ref (cancellable);
      call->caller_handler
          = g_cancellable_connect (cancellable, G_CALLBACK (caller_cancelled), task, NULL);
    }
  call->deadline_id = bs_timeout_add (MAX (timeout_ms, 1), deadline_reached, call);
  soup_session_send_async (client->session, call->msg, G_PRIORITY_DEFAULT, call->call_cancellable,
                           sent, g_steal_pointer (&task));
}

BsHttpResponse *
bs_http_client_request_finish (BsHttpClient *client, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
