/* bs-http-stream.c: a client connection as libsoup sees it; see the header.
 *
 * How a connection ends without libsoup acting on a refused request: libsoup
 * only runs a handler once a head (and body) is complete, and when a read
 * fails it drops the message and disconnects, closing this stream, provided
 * it has begun a message, which for a kept-alive connection means it read at
 * least one whole line. So a refusal hands on the bytes before the bad one,
 * then "\r\n" when no line of the head went through yet, then a read error
 * (never an end of file: libsoup parses a head cut short by one). */
#include "bs-http-stream.h"

#include "bs-client-address.h"
#include "bs-http-guard.h"
#include "bs-http-linger.h"
#include "bs-http-output.h"
#include "bs-loop.h"
#include "bs-socket-watch.h"

#include <string.h>

#define STREAM_QUARK_NAME "bs-http-stream"
#define LINGER_MS 2000

typedef enum
{
  END_NONE,
  END_PEER_CLOSED, /* end of file, or the deadline passed */
  END_REJECTED,    /* the guard refused a request */
} EndReason;

#define BS_TYPE_HTTP_INPUT (bs_http_input_get_type ())
G_DECLARE_FINAL_TYPE (BsHttpInput, bs_http_input, BS, HTTP_INPUT, GInputStream)

struct _BsHttpInput
{
  GInputStream parent;
  BsHttpStream *stream; /* not owned: the stream owns us */
};

struct _BsHttpStream
{
  GIOStream parent;
  GSocket *socket;
  GSocketConnection *base; /* its output stream is ours, without TLS */
  GTlsConnection *tls;     /* over base, or NULL: plain HTTP */
  GCancellable *handshake; /* while the TLS handshake runs */
  char *peer;              /* the client's address, as text */
  BsHttpInput *input;
  BsHttpOutput *output; /* plain HTTP; with TLS, the TLS connection's */
  BsHttpGuard *guard;
  const BsHttpStreamHooks *hooks;
  gpointer user_data;
  EndReason end;
  gboolean line_sent;   /* the "\r\n" that lets libsoup end the message */
  GSource *wake;        /* child of the source libsoup polls; ready on expire */
  BsSocketWatch *watch; /* plain HTTP: what libsoup's reads wait on */
  gint64 deadline_us;
  guint timeout_ms;
  guint64 begun_seen;
  gboolean socket_closed;
};

static void bs_http_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE (BsHttpInput, bs_http_input, G_TYPE_INPUT_STREAM,
                         G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                bs_http_input_pollable_init))
G_DEFINE_TYPE (BsHttpStream, bs_http_stream, G_TYPE_IO_STREAM)

static GQuark
stream_quark (void)
{
  return g_quark_from_static_string (STREAM_QUARK_NAME);
}

/* libsoup must end the message it is reading: hand on "\r\n" if it has not
 * begun one yet, then fail every read. */
static gssize
end_read (BsHttpStream *self, guint8 *buffer, gsize count, GError **error)
{
  if (!self->line_sent && bs_http_guard_head_has_no_line (self->guard))
    {
      static const char line[] = "\r\n";
      gsize n = MIN (count, (gsize) 2);
      memcpy (buffer, line, n);
      self->line_sent = n == 2;
      return (gssize) n;
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                       self->end == END_REJECTED ? "request refused" : "connection closed by peer");
  return -1;
}

static void
note_progress (BsHttpStream *self)
{
  guint64 begun = bs_http_guard_get_requests_begun (self->guard);

  if (begun != self->begun_seen)
    {
      self->begun_seen = begun;
      self->deadline_us = g_get_monotonic_time () + (gint64) self->timeout_ms * 1000;
    }
  /* all of it arrived: the handler's time is not ours to bound here */
  if (bs_http_guard_get_requests_read (self->guard) == begun && bs_http_guard_is_idle (self->guard))
    self->deadline_us = G_MAXINT64;
}

/* The next bytes from the client: straight from the socket, or decrypted. */
static gssize
receive (BsHttpStream *self, void *buffer, gsize count, gboolean blocking,
         GCancellable *cancellable, GError **error)
{
  GInputStream *tls_input;

  if (self->tls == NULL)
    return g_socket_receive_with_blocking (self->socket, buffer, count, blocking, cancellable,
                                           error);
  tls_input = g_io_stream_get_input_stream (G_IO_STREAM (self->tls));
  if (blocking)
    return g_input_stream_read (tls_input, buffer, count, cancellable, error);
  return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (tls_input), buffer,
                                                   count, cancellable, error);
}

static gssize
input_read (BsHttpInput *input, void *buffer, gsize count, gboolean blocking,
            GCancellable *cancellable, GError **error)
{
  BsHttpStream *self = input->stream;
  g_autoptr (GError) local_error = NULL;

  for (;;)
    {
      gssize n;
      gsize kept;

      if (self == NULL || self->socket_closed)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "connection closed");
          return -1;
        }
      if (self->end != END_NONE)
        return end_read (self, buffer, count, error);
      n = receive (self, buffer, count, blocking, cancellable, &local_error);
      if (n < 0 && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return -1;
        }
      if (n <= 0)
        {
          /* end of file, or reset: either way libsoup must end the message */
          g_clear_error (&local_error);
          self->end = END_PEER_CLOSED;
          continue;
        }
      kept = bs_http_guard_scan (self->guard, buffer, (gsize) n);
      note_progress (self);
      if (bs_http_guard_failed (self->guard))
        self->end = END_REJECTED;
      if (kept > 0)
        return (gssize) kept;
      if (self->end == END_NONE && !blocking)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "no data yet");
          return -1;
        }
    }
}

static gssize
bs_http_input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                    GError **error)
{
  return input_read (BS_HTTP_INPUT (stream), buffer, count, TRUE, cancellable, error);
}

static gssize
bs_http_input_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
                                GError **error)
{
  return input_read (BS_HTTP_INPUT (stream), buffer, count, FALSE, NULL, error);
}

static gboolean
bs_http_input_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
bs_http_input_is_readable (GPollableInputStream *stream)
{
  BsHttpStream *self = BS_HTTP_INPUT (stream)->stream;

  if (self == NULL || self->socket_closed || self->end != END_NONE)
    return TRUE;
  if (self->tls != NULL)
    return g_pollable_input_stream_is_readable (
        G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (self->tls))));
  return g_socket_condition_check (self->socket, G_IO_IN) != 0;
}

static gboolean
wake_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  g_source_set_ready_time (source, -1);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs wake_funcs = { NULL, NULL, wake_dispatch, NULL, NULL, NULL };

static GSource *
bs_http_input_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  BsHttpStream *self = BS_HTTP_INPUT (stream)->stream;
  g_autoptr (GSource) socket_source = NULL;
  GSource *source;

  if (self == NULL || self->socket_closed)
    {
      source = g_pollable_source_new (G_OBJECT (stream));
      g_source_set_ready_time (source, 0);
      return source;
    }
  if (self->tls != NULL)
    socket_source = g_pollable_input_stream_create_source (
        G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (self->tls))), NULL);
  source = g_pollable_source_new_full (stream, socket_source, cancellable);
  /* GLib 2.74 takes a source's descriptors out of the poll set while it
   * dispatches it, and puts them back after, unless it may recurse; each
   * change writes to the loop's eventfd, even from the owning thread. No
   * callback under this source iterates the loop, so letting it recurse
   * changes nothing but the system calls it saves. TLS keeps GIO's ways. */
  if (self->tls == NULL)
    g_source_set_can_recurse (source, TRUE);
  if (self->tls == NULL && self->end == END_NONE)
    {
      /* the socket stays in the poll set, and libsoup's sources above this
       * one hold no descriptor (bs-socket-watch.h) */
      g_autoptr (GSource) readable = NULL;

      if (self->watch == NULL)
        self->watch = bs_socket_watch_new (g_socket_get_fd (self->socket));
      readable = bs_socket_watch_create_source (self->watch);
      g_source_add_child_source (source, readable);
    }
  if (self->wake != NULL)
    g_source_unref (self->wake);
  self->wake = g_source_new (&wake_funcs, sizeof (GSource));
  g_source_add_child_source (source, self->wake);
  if (self->end != END_NONE)
    g_source_set_ready_time (self->wake, 0);
  return source;
}

static void
bs_http_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = bs_http_input_can_poll;
  iface->is_readable = bs_http_input_is_readable;
  iface->create_source = bs_http_input_create_source;
  iface->read_nonblocking = bs_http_input_read_nonblocking;
}

static gboolean
bs_http_input_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* the socket is closed with the stream */
}

static void
bs_http_input_class_init (BsHttpInputClass *klass)
{
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  input_class->read_fn = bs_http_input_read;
  input_class->close_fn = bs_http_input_close;
}

static void
bs_http_input_init (BsHttpInput *input)
{
}

/* Before the socket is closed or handed on: out of the loop's poll set. */
static void
forget_watch (BsHttpStream *self)
{
  if (self->watch == NULL)
    return;
  bs_socket_watch_close (self->watch);
  g_clear_pointer (&self->watch, bs_socket_watch_unref);
}

static void
close_socket (BsHttpStream *self)
{
  g_autoptr (GBytes) unsent = bs_http_output_take_unsent (self->output);

  forget_watch (self);
  /* the end of a last answer the socket could not take at once: one more
   * try, never a wait */
  if (unsent != NULL)
    g_socket_send_with_blocking (self->socket, g_bytes_get_data (unsent, NULL),
                                 g_bytes_get_size (unsent), FALSE, NULL, NULL);
  g_socket_close (self->socket, NULL);
}

static void
socket_closed (BsHttpStream *self)
{
  if (self->socket_closed)
    return;
  self->socket_closed = TRUE;
  if (self->hooks->closed != NULL)
    self->hooks->closed (self, self->user_data);
}

static void
lingered (gpointer user_data)
{
  g_autoptr (BsHttpStream) self = user_data;

  socket_closed (self);
}

/* A refusal sent through TLS. A client that does not read it does not hold
 * the connection: after LINGER_MS the write is cancelled. */
typedef struct
{
  BsHttpStream *self; /* a reference */
  GBytes *response;
  GCancellable *late;
  guint timeout_id;
} TlsAnswer;

static gboolean
tls_answer_late (gpointer user_data)
{
  TlsAnswer *answer = user_data;

  answer->timeout_id = 0;
  g_cancellable_cancel (answer->late);
  return G_SOURCE_REMOVE;
}

static void
tls_answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TlsAnswer *answer = user_data;
  BsHttpStream *self = answer->self;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  g_clear_handle_id (&answer->timeout_id, bs_source_remove);
  if (!self->socket_closed)
    close_socket (self);
  socket_closed (self);
  g_object_unref (answer->late);
  g_bytes_unref (answer->response);
  g_object_unref (answer->self);
  g_free (answer);
}

static void
tls_answer (BsHttpStream *self, GBytes *response)
{
  TlsAnswer *answer = g_new0 (TlsAnswer, 1);

  answer->self = g_object_ref (self);
  answer->response = g_bytes_ref (response);
  answer->late = g_cancellable_new ();
  answer->timeout_id = bs_timeout_add (LINGER_MS, tls_answer_late, answer);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (self->tls)),
                                   g_bytes_get_data (response, NULL), g_bytes_get_size (response),
                                   G_PRIORITY_DEFAULT, answer->late, tls_answered, answer);
}

static gboolean
bs_http_stream_close (GIOStream *stream, GCancellable *cancellable, GError **error)
{
  BsHttpStream *self = BS_HTTP_STREAM (stream);
  g_autoptr (GBytes) response = NULL;
  g_autoptr (GBytes) unsent = NULL;

  if (self->socket_closed)
    return TRUE;
  if (self->end == END_REJECTED && self->hooks->rejected != NULL)
    response = self->hooks->rejected (self, bs_http_guard_get_error_code (self->guard),
                                      bs_http_guard_get_error_message (self->guard),
                                      bs_http_guard_get_method (self->guard),
                                      bs_http_guard_get_target (self->guard), self->user_data);
  if (response == NULL)
    {
      close_socket (self);
      socket_closed (self);
      return TRUE;
    }
  if (self->tls != NULL)
    {
      tls_answer (self, response); /* not the lingering close of plain sockets */
      return TRUE;
    }
  /* answer, then read what the client still sends for a while before the
   * close, so that its TCP stack does not reset the answer away */
  forget_watch (self);
  unsent = bs_http_output_take_unsent (self->output);
  if (unsent != NULL)
    {
      /* the end of the previous answer goes before the refusal */
      g_autoptr (GByteArray) both = g_bytes_unref_to_array (g_steal_pointer (&unsent));

      g_byte_array_append (both, g_bytes_get_data (response, NULL),
                           (guint) g_bytes_get_size (response));
      g_bytes_unref (response);
      response = g_byte_array_free_to_bytes (g_steal_pointer (&both));
    }
  bs_http_linger_start (self->socket, response, LINGER_MS, lingered, g_object_ref (self));
  return TRUE;
}

static GInputStream *
bs_http_stream_get_input_stream (GIOStream *stream)
{
  return G_INPUT_STREAM (BS_HTTP_STREAM (stream)->input);
}

static GOutputStream *
bs_http_stream_get_output_stream (GIOStream *stream)
{
  BsHttpStream *self = BS_HTTP_STREAM (stream);

  if (self->tls != NULL)
    return g_io_stream_get_output_stream (G_IO_STREAM (self->tls));
  return G_OUTPUT_STREAM (self->output);
}

static void
bs_http_stream_finalize (GObject *object)
{
  BsHttpStream *self = BS_HTTP_STREAM (object);

  if (!self->socket_closed)
    close_socket (self);
  forget_watch (self);
  self->input->stream = NULL;
  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_object (&self->handshake);
  g_clear_object (&self->tls);
  g_free (self->peer);
  g_clear_object (&self->base);
  g_clear_object (&self->socket);
  g_clear_pointer (&self->wake, g_source_unref);
  bs_http_guard_free (self->guard);
  G_OBJECT_CLASS (bs_http_stream_parent_class)->finalize (object);
}

static void
bs_http_stream_class_init (BsHttpStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = bs_http_stream_finalize;
  stream_class->get_input_stream = bs_http_stream_get_input_stream;
  stream_class->get_output_stream = bs_http_stream_get_output_stream;
  stream_class->close_fn = bs_http_stream_close;
}

static void
bs_http_stream_init (BsHttpStream *self)
{
  self->deadline_us = G_MAXINT64;
}

BsHttpStream *
bs_http_stream_new (GSocket *socket, const BsHttpStreamHooks *hooks, gpointer user_data)
{
  BsHttpStream *self = g_object_new (BS_TYPE_HTTP_STREAM, NULL);

  self->socket = g_object_ref (socket);
  self->base = g_socket_connection_factory_create_connection (socket);
  self->input = g_object_new (BS_TYPE_HTTP_INPUT, NULL);
  self->input->stream = self;
  self->output = bs_http_output_new (socket);
  self->guard = bs_http_guard_new ();
  self->hooks = hooks;
  self->user_data = user_data;
  return self;
}

gboolean
bs_http_stream_start_tls (BsHttpStream *stream, GTlsCertificate *certificate, GError **error)
{
  GIOStream *tls;

  g_return_val_if_fail (stream->tls == NULL, FALSE);
  tls = g_tls_server_connection_new (G_IO_STREAM (stream->base), certificate, error);
  if (tls == NULL)
    return FALSE;
  stream->tls = G_TLS_CONNECTION (tls);
  /* the socket is ours to close; libsoup closes this stream */
  g_tls_connection_set_require_close_notify (stream->tls, FALSE);
  return TRUE;
}

static void
handshaken (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  BsHttpStream *self = g_task_get_source_object (task);
  GError *error = NULL;

  g_clear_object (&self->handshake);
  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

void
bs_http_stream_handshake_async (BsHttpStream *stream, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  GTask *task = g_task_new (stream, NULL, callback, user_data);

  g_return_if_fail (stream->tls != NULL && stream->handshake == NULL);
  stream->handshake = g_cancellable_new ();
  g_tls_connection_handshake_async (stream->tls, G_PRIORITY_DEFAULT, stream->handshake, handshaken,
                                    task);
}

gboolean
bs_http_stream_handshake_finish (BsHttpStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

GSocket *
bs_http_stream_get_socket (BsHttpStream *stream)
{
  return stream->socket;
}

BsHttpStream *
bs_http_stream_from_address (GSocketAddress *address)
{
  if (address == NULL)
    return NULL;
  return g_object_get_qdata (G_OBJECT (address), stream_quark ());
}

void
bs_http_stream_attach_to_address (BsHttpStream *stream, GSocketAddress *address)
{
  g_object_set_qdata_full (G_OBJECT (address), stream_quark (), g_object_ref (stream),
                           g_object_unref);
}

gboolean
bs_http_stream_was_rejected (BsHttpStream *stream)
{
  return stream->end == END_REJECTED;
}

gint64
bs_http_stream_get_deadline (BsHttpStream *stream)
{
  return stream->deadline_us;
}

void
bs_http_stream_set_deadline (BsHttpStream *stream, gint64 deadline_us)
{
  stream->deadline_us = deadline_us;
}

void
bs_http_stream_set_request_timeout (BsHttpStream *stream, guint timeout_ms)
{
  stream->timeout_ms = timeout_ms;
}

gboolean
bs_http_stream_is_idle (BsHttpStream *stream)
{
  return bs_http_guard_is_idle (stream->guard);
}

void
bs_http_stream_expire (BsHttpStream *stream)
{
  if (stream->handshake != NULL)
    g_cancellable_cancel (stream->handshake); /* too slow to say hello */
  if (stream->end == END_NONE)
    stream->end = END_PEER_CLOSED;
  stream->deadline_us = G_MAXINT64;
  if (stream->wake != NULL && !g_source_is_destroyed (stream->wake))
    g_source_set_ready_time (stream->wake, 0);
}

void
bs_http_stream_set_peer (BsHttpStream *stream, GInetAddress *address)
{
  g_autoptr (BsAddressSet) none = NULL;
  g_autoptr (GInetAddress) client = bs_client_address (none, address, NULL);

  g_free (stream->peer);
  stream->peer = g_inet_address_to_string (client);
}

const char *
bs_http_stream_get_peer (BsHttpStream *stream)
{
  return stream->peer;
}

gboolean
bs_http_stream_is_closed (BsHttpStream *stream)
{
  return stream->socket_closed;
}

void
bs_http_stream_force_close (BsHttpStream *stream)
{
  if (stream->handshake != NULL)
    g_cancellable_cancel (stream->handshake);
  if (stream->socket_closed)
    return;
  close_socket (stream);
  socket_closed (stream);
}
