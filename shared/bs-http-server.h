/* bs-http-server.h: a libsoup server with limits, routing, access log and metrics. */
#pragma once

#include "bs-auth.h"
#include "bs-client-address.h"
#include "bs-metrics.h"
#include "bs-rate-limit.h"
#include "bs-router.h"
#include "bs-tls.h"

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BsHttpServer BsHttpServer;

typedef struct
{
  gsize max_body_bytes;     /* larger bodies get 413; default 1 MiB */
  guint request_timeout_ms; /* a whole request, or an idle keep-alive wait; default 15 s */
  guint listen_backlog;     /* default 1024 */
  guint max_connections;    /* beyond: 503 and close; default bs_http_default_max_connections() */
} BsHttpLimits;

#define BS_HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define BS_HTTP_DEFAULT_REQUEST_TIMEOUT_MS 15000
#define BS_HTTP_DEFAULT_BACKLOG 1024
#define BS_HTTP_MAX_CONNECTIONS_CAP 16384
/* How long a refused connection is read (and discarded) before the close. */
#define BS_HTTP_REFUSED_LINGER_MS 500
/* At most this many refused connections linger at once; more close at once. */
#define BS_HTTP_REFUSED_LINGER_MAX 256
/* Over HTTP_MAX_CONNECTIONS, at most this many connections are answered 503
 * per window; the rest wait in the listen backlog until the window ends. */
#define BS_HTTP_REFUSE_BUDGET 32
#define BS_HTTP_REFUSE_WINDOW_MS 100
/* A too-large body declared up to this size is read and discarded so the
 * client sees the 413; a larger one gets the 413 and the connection closed. */
#define BS_HTTP_DRAIN_LIMIT (16 * 1024 * 1024)

void bs_http_limits_init_default (BsHttpLimits *limits);
/* Half the descriptor limit (RLIMIT_NOFILE), between 16 and 16384: the rest
 * is left for PostgreSQL, Redis, outgoing HTTP and lingering closes. */
guint bs_http_default_max_connections (void);

/* Takes ownership of @router. @metrics gets http_requests_total and
 * http_request_duration_seconds; it must outlive the server. */
BsHttpServer *bs_http_server_new (BsRouter *router, BsMetrics *metrics, const BsHttpLimits *limits);
void bs_http_server_free (BsHttpServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsHttpServer, bs_http_server_free)

/* Listen on the socket systemd passed (LISTEN_FDS), or else on
 * @address:@port with our own backlog. */
gboolean bs_http_server_listen (BsHttpServer *server, const char *address, guint16 port,
                                GError **error);

/* Listen on a duplicate of @first's listening socket: another event loop's
 * server, accepting from the same socket (each accept goes to one loop). */
gboolean bs_http_server_listen_like (BsHttpServer *server, BsHttpServer *first, GError **error);

/* The port we listen on (for messages and the watchdog self-check). */
guint16 bs_http_server_get_port (BsHttpServer *server);
gboolean bs_http_server_is_socket_activated (BsHttpServer *server);

/* Stop accepting connections; requests already read are still answered,
 * with "Connection: close". */
void bs_http_server_stop_accepting (BsHttpServer *server);

/* Called once, after bs_http_server_stop_accepting(), when no request is
 * left in flight. */
void bs_http_server_set_drained_func (BsHttpServer *server, GSourceFunc func, gpointer user_data);

/* One of @n_loops servers of a service, each on its own event loop: count
 * open connections together with @first (@server itself, or another loop's
 * server that outlives this one), so that max_connections bounds their sum,
 * and take a 1/@n_loops share of the refusal budget. */
void bs_http_server_share_limits (BsHttpServer *server, BsHttpServer *first, guint n_loops);

/* Requests that need a bearer token (bs_auth_is_protected()) are checked
 * against @auth when their headers arrive: without a valid token, 401 and
 * "WWW-Authenticate: Bearer", and no handler runs. Counted in @metrics
 * (http_auth_total), the server's own registry. Call before listening. */
void bs_http_server_set_auth (BsHttpServer *server, BsAuth *auth, BsMetrics *metrics);

/* Limit the writes (POST, PUT, PATCH, DELETE) of each client to @limit
 * (shared by every loop; NULL: none): over it, 429 with Retry-After before
 * a handler runs. The client is the peer, or from X-Forwarded-For when the
 * peer is a trusted proxy (bs_http_server_set_trusted_proxies()). Counted
 * in @metrics (http_rate_limited_total). Call before listening. */
void bs_http_server_set_rate_limit (BsHttpServer *server, BsRateLimit *limit, BsMetrics *metrics);

/* The proxies whose X-Forwarded-For names the client, for the access
 * records' CLIENT_ADDRESS= and the rate limit; NULL or empty: none. */
void bs_http_server_set_trusted_proxies (BsHttpServer *server, BsAddressSet *proxies);

/* HTTPS with @identity's certificate (the one in use when a connection is
 * accepted): a TLS handshake, bounded by the request timeout, before
 * libsoup sees the connection. Counted in @metrics
 * (http_tls_handshake_failures_total). Call before listening. */
void bs_http_server_set_tls (BsHttpServer *server, BsTlsIdentity *identity, BsMetrics *metrics);

/* Requests handed to a handler and not yet finished. */
guint bs_http_server_get_in_flight (BsHttpServer *server);

G_END_DECLS
