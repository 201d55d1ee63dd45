/* bs-http-client.h: calls to another Bookstore service over HTTP: one
 * keep-alive SoupSession per upstream, a hard deadline per call, the
 * request id forwarded, and transport failures as BS_ERROR codes. */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _BsHttpClient BsHttpClient;

/* A larger answer fails the call (BS_ERROR_BAD_GATEWAY): an upstream that
 * streams without end must not grow our memory without end. */
#define BS_HTTP_CLIENT_MAX_BODY (1024 * 1024)

typedef struct
{
  guint status;
  GBytes *body;                /* never NULL */
  SoupMessageHeaders *headers; /* response headers */
} BsHttpResponse;

void bs_http_response_free (BsHttpResponse *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsHttpResponse, bs_http_response_free)

/* @base_url: http:// or https:// URL of the upstream, optionally with a path
 * prefix; no query or fragment (BS_ERROR_CONFIG otherwise, naming
 * @config_name). @max_conns: connections kept to it. Never uses a proxy. */
BsHttpClient *bs_http_client_new (const char *config_name, const char *base_url,
                                  const char *user_agent, guint max_conns, GError **error);
/* Servers reached over https are checked against the certificates in
 * @ca_file (NULL or empty: the system's trust store), and their name against
 * the base URL's host. BS_ERROR_CONFIG naming @variable for a bad file. */
gboolean bs_http_client_set_ca_file (BsHttpClient *client, const char *variable,
                                     const char *ca_file, GError **error);
void bs_http_client_free (BsHttpClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsHttpClient, bs_http_client_free)

const char *bs_http_client_get_base_url (BsHttpClient *client);

/* @method @path (starting with '/', appended to the base URL). @request_id
 * (may be NULL) goes out as X-Request-ID; @headers (may be NULL) are extra
 * name/value pairs ending with NULL; @body (may be NULL) is sent with
 * @content_type. The whole call, queueing included, must finish within
 * @timeout_ms. Errors: BS_ERROR_TIMEOUT (deadline), BS_ERROR_UNAVAILABLE
 * (connection refused, reset, DNS...), BS_ERROR_BAD_GATEWAY (an answer
 * over BS_HTTP_CLIENT_MAX_BODY), G_IO_ERROR_CANCELLED when
 * @cancellable was cancelled. Any HTTP status is a success here. */
void bs_http_client_request_async (BsHttpClient *client, const char *method, const char *path,
                                   const char *request_id, const char *const *headers,
                                   const char *content_type, GBytes *body, guint timeout_ms,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
BsHttpResponse *bs_http_client_request_finish (BsHttpClient *client, GAsyncResult *result,
                                               GError **error);

G_END_DECLS
