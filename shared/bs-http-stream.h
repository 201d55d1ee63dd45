/* bs-http-stream.h: the stream libsoup reads a client connection through.
 *
 * We accept connections ourselves and hand libsoup this GIOStream instead of
 * the socket. Every byte read passes bs-http-guard first; when the guard
 * refuses a request, libsoup is made to drop the connection without acting
 * on the request, and the stream then answers the JSON error itself and
 * closes with a lingering close. A peer that closes its end, or a request
 * past its deadline, ends the connection the same way at once (libsoup 3.2.3
 * would otherwise keep the socket of an idle keep-alive connection forever). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BS_TYPE_HTTP_STREAM (bs_http_stream_get_type ())
G_DECLARE_FINAL_TYPE (BsHttpStream, bs_http_stream, BS, HTTP_STREAM, GIOStream)

typedef struct
{
  /* The guard refused a request: return the whole response to send (the
   * owner writes the access record and counts it). */
  GBytes *(*rejected) (BsHttpStream *stream, int code, const char *message, const char *method,
                       const char *target, gpointer user_data);
  /* The socket is closed: nothing more happens on @stream. */
  void (*closed) (BsHttpStream *stream, gpointer user_data);
} BsHttpStreamHooks;

/* Takes a reference on @socket (connected, non-blocking). @hooks must outlive
 * the stream. */
BsHttpStream *bs_http_stream_new (GSocket *socket, const BsHttpStreamHooks *hooks,
                                  gpointer user_data);

/* HTTPS: the client's bytes go through a TLS server connection with
 * @certificate (before anything is read). Then run the handshake, and hand
 * the stream to libsoup once it succeeded; bs_http_stream_expire() while it
 * runs cancels it. */
gboolean bs_http_stream_start_tls (BsHttpStream *stream, GTlsCertificate *certificate,
                                   GError **error);
void bs_http_stream_handshake_async (BsHttpStream *stream, GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean bs_http_stream_handshake_finish (BsHttpStream *stream, GAsyncResult *result,
                                          GError **error);

GSocket *bs_http_stream_get_socket (BsHttpStream *stream);

/* The stream a libsoup message arrived on, from the remote address we gave
 * soup_server_accept_iostream(); NULL for a message not ours. */
BsHttpStream *bs_http_stream_from_address (GSocketAddress *address);
/* Tie @stream to @address for bs_http_stream_from_address(). */
void bs_http_stream_attach_to_address (BsHttpStream *stream, GSocketAddress *address);

/* The guard refused a request on this connection (its record is written by
 * the rejected hook, not by libsoup's end of the message). */
gboolean bs_http_stream_was_rejected (BsHttpStream *stream);

/* Deadline (monotonic µs) for the bytes of the request being read, or for
 * the next request to begin; G_MAXINT64 when none. */
gint64 bs_http_stream_get_deadline (BsHttpStream *stream);
void bs_http_stream_set_deadline (BsHttpStream *stream, gint64 deadline_us);
/* How long a request may take to arrive; the deadline starts with its first
 * byte. */
void bs_http_stream_set_request_timeout (BsHttpStream *stream, guint timeout_ms);
/* TRUE between requests (nothing of the next one arrived). */
gboolean bs_http_stream_is_idle (BsHttpStream *stream);

/* End the connection now: libsoup sees it as closed by the peer. */
void bs_http_stream_expire (BsHttpStream *stream);

/* The client's address as text ("192.0.2.7"; IPv4 seen through a
 * dual-stack socket as IPv4), set once when the connection is accepted; NULL
 * until then. */
void bs_http_stream_set_peer (BsHttpStream *stream, GInetAddress *address);
const char *bs_http_stream_get_peer (BsHttpStream *stream);

/* The socket is closed: nothing more happens on @stream. */
gboolean bs_http_stream_is_closed (BsHttpStream *stream);

/* Close the socket at once, whatever libsoup is doing (server shutdown). */
void bs_http_stream_force_close (BsHttpStream *stream);

G_END_DECLS
