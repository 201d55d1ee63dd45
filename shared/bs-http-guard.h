/* bs-http-guard.h: a strict HTTP/1.1 request framing check that every byte a
 * client sends passes before libsoup reads it.
 *
 * libsoup 3.2.3's parser is lenient where leniency is request smuggling
 * (duplicate Content-Length, Content-Length with chunked, "Transfer-Encoding :",
 * bad chunk sizes read as an empty body) and answers other malformed
 * requests without a body or not at all. The guard follows the byte stream of
 * a connection (request heads, Content-Length and chunked bodies, trailers,
 * pipelined requests) and stops at the first byte that breaks RFC 9112 or our
 * limits, so that libsoup only ever sees well-framed requests. It does no I/O:
 * bs-http-stream feeds it and answers the error it reports. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Limits, chosen as nginx's defaults are (large_client_header_buffers 4 8k). */
#define BS_HTTP_GUARD_MAX_REQUEST_LINE 8192 /* longer: 414 */
#define BS_HTTP_GUARD_MAX_HEADER_LINE 8192  /* longer: 431 */
#define BS_HTTP_GUARD_MAX_HEAD 32768        /* request line and headers together: 431 */
#define BS_HTTP_GUARD_MAX_HEADERS 100       /* more header fields: 431 */
#define BS_HTTP_GUARD_MAX_CHUNKS 4096       /* more chunks in one body: 413 */
#define BS_HTTP_GUARD_MAX_BLANK_LINES 8     /* empty lines tolerated before a request */

typedef struct _BsHttpGuard BsHttpGuard;

BsHttpGuard *bs_http_guard_new (void);
void bs_http_guard_free (BsHttpGuard *guard);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsHttpGuard, bs_http_guard_free)

/* Check @len bytes at @data, the next ones the client sent, in place.
 * Returns how many bytes at the start of @data may be handed on (empty lines
 * before a request are dropped, so this can be less than @len even when all
 * is well). Once bs_http_guard_failed() is TRUE, nothing more is accepted. */
gsize bs_http_guard_scan (BsHttpGuard *guard, guint8 *data, gsize len);

gboolean bs_http_guard_failed (BsHttpGuard *guard);
/* The error to answer: a BsErrorCode and a static message. */
int bs_http_guard_get_error_code (BsHttpGuard *guard);
const char *bs_http_guard_get_error_message (BsHttpGuard *guard);

/* TRUE between requests: no byte of the next request seen yet. */
gboolean bs_http_guard_is_idle (BsHttpGuard *guard);
/* TRUE while reading a request head of which no whole line was handed on. */
gboolean bs_http_guard_head_has_no_line (BsHttpGuard *guard);
/* Requests begun and requests whose bytes (head and body) all arrived. */
guint64 bs_http_guard_get_requests_begun (BsHttpGuard *guard);
guint64 bs_http_guard_get_requests_read (BsHttpGuard *guard);
/* Method and target of the request being read, for the access record of an
 * error ("-" when not read yet). */
const char *bs_http_guard_get_method (BsHttpGuard *guard);
const char *bs_http_guard_get_target (BsHttpGuard *guard);

G_END_DECLS
