/* bs-http-output.c: a response's head and body in one sendmsg(2); see the
 * header. */
#include "bs-http-output.h"

#include <string.h>

#define MAX_KEPT_HEAD 16384

struct _BsHttpOutput
{
  GOutputStream parent;
  GSocket *socket;
  GByteArray *unsent; /* a head kept for its body, or what the socket refused */
  GSource *drain;     /* while unsent bytes wait for the socket on their own */
};

static void bs_http_output_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE (BsHttpOutput, bs_http_output, G_TYPE_OUTPUT_STREAM,
                         G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                bs_http_output_pollable_init))

/* "HTTP/1.1 200 OK\r\n...\r\n\r\n", not an interim 1xx (libsoup waits after
 * "100 Continue" without writing more). */
static gboolean
is_final_head (const guint8 *buffer, gsize count)
{
  return count >= 16 && count <= MAX_KEPT_HEAD && memcmp (buffer, "HTTP/1.", 7) == 0
         && buffer[9] >= '2' && buffer[9] <= '5' && memcmp (buffer + count - 4, "\r\n\r\n", 4) == 0;
}

/* Sends what is kept and @buffer after it; returns the bytes of @buffer
 * sent, or -1 (G_IO_ERROR_WOULD_BLOCK when the socket is full). */
static gssize
write_after_unsent (BsHttpOutput *self, const void *buffer, gsize count, gboolean blocking,
                    GCancellable *cancellable, GError **error)
{
  GOutputVector vectors[2] = {
    { self->unsent->data, self->unsent->len },
    { buffer, count },
  };
  gsize sent = 0;
  GPollableReturn result;

  if (blocking)
    {
      /* only for a caller that may block (libsoup never does) */
      while (self->unsent->len > 0)
        {
          gssize n = g_socket_send_with_blocking (self->socket, (const char *) self->unsent->data,
                                                  self->unsent->len, TRUE, cancellable, error);
          if (n < 0)
            return -1;
          g_byte_array_remove_range (self->unsent, 0, (guint) n);
        }
    }
  if (self->unsent->len == 0)
    return g_socket_send_with_blocking (self->socket, buffer, count, blocking, cancellable, error);
  result = g_socket_send_message_with_timeout (self->socket, NULL, vectors, count > 0 ? 2 : 1, NULL,
                                               0, 0, 0, &sent, cancellable, error);
  if (result == G_POLLABLE_RETURN_FAILED)
    return -1;
  if (result == G_POLLABLE_RETURN_WOULD_BLOCK)
    sent = 0;
  if (sent < self->unsent->len)
    {
      g_byte_array_remove_range (self->unsent, 0, (guint) sent);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "the socket is full");
      return -1;
    }
  sent -= self->unsent->len;
  g_byte_array_set_size (self->unsent, 0);
  if (sent == 0 && count > 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "the socket is full");
      return -1;
    }
  return (gssize) sent;
}

static void
stop_draining (BsHttpOutput *self)
{
  if (self->drain == NULL)
    return;
  g_source_destroy (self->drain);
  g_clear_pointer (&self->drain, g_source_unref);
}

static gssize
output_write (BsHttpOutput *self, const void *buffer, gsize count, gboolean blocking,
              GCancellable *cancellable, GError **error)
{
  gssize sent;

  if (self->unsent->len == 0 && is_final_head (buffer, count))
    {
      g_byte_array_append (self->unsent, buffer, (guint) count);
      return (gssize) count;
    }
  /* what is kept goes first, in the same sendmsg(2) */
  sent = write_after_unsent (self, buffer, count, blocking, cancellable, error);
  if (self->unsent->len == 0)
    stop_draining (self);
  return sent;
}

static gssize
bs_http_output_write (GOutputStream *stream, const void *buffer, gsize count,
                      GCancellable *cancellable, GError **error)
{
  return output_write (BS_HTTP_OUTPUT (stream), buffer, count, TRUE, cancellable, error);
}

static gssize
bs_http_output_write_nonblocking (GPollableOutputStream *stream, const void *buffer, gsize count,
                                  GError **error)
{
  return output_write (BS_HTTP_OUTPUT (stream), buffer, count, FALSE, NULL, error);
}

static gboolean
drain_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  BsHttpOutput *self = user_data;
  g_autoptr (GError) error = NULL;

  if (write_after_unsent (self, NULL, 0, FALSE, NULL, &error) < 0
      && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  /* sent, or the connection failed: libsoup finds out on its next read */
  g_byte_array_set_size (self->unsent, 0);
  g_clear_pointer (&self->drain, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* libsoup flushes at the end of each response (closing the body's stream
 * flushes this one). Never blocks the loop: what the socket does not take
 * now goes when it can. */
static gboolean
bs_http_output_flush (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  BsHttpOutput *self = BS_HTTP_OUTPUT (stream);
  g_autoptr (GError) local_error = NULL;

  if (self->unsent->len == 0 || self->drain != NULL)
    return TRUE;
  if (write_after_unsent (self, NULL, 0, FALSE, cancellable, &local_error) >= 0)
    return TRUE;
  if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  self->drain = g_socket_create_source (self->socket, G_IO_OUT, NULL);
  g_source_set_can_recurse (self->drain, TRUE);
  g_source_set_callback (self->drain, G_SOURCE_FUNC (drain_ready), self, NULL);
  g_source_attach (self->drain, g_main_context_get_thread_default ());
  return TRUE;
}

static gboolean
bs_http_output_close (GOutputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE; /* the socket is closed with its connection's stream */
}

static gboolean
bs_http_output_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
bs_http_output_is_writable (GPollableOutputStream *stream)
{
  BsHttpOutput *self = BS_HTTP_OUTPUT (stream);

  return g_socket_condition_check (self->socket, G_IO_OUT) != 0;
}

static GSource *
bs_http_output_create_source (GPollableOutputStream *stream, GCancellable *cancellable)
{
  BsHttpOutput *self = BS_HTTP_OUTPUT (stream);
  g_autoptr (GSource) socket_source = g_socket_create_source (self->socket, G_IO_OUT, NULL);
  GSource *source;

  /* as for reads (bs-http-stream.c): no nested loop runs under it */
  g_source_set_can_recurse (socket_source, TRUE);
  source = g_pollable_source_new_full (stream, socket_source, cancellable);
  g_source_set_can_recurse (source, TRUE);
  return source;
}

static void
bs_http_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = bs_http_output_can_poll;
  iface->is_writable = bs_http_output_is_writable;
  iface->create_source = bs_http_output_create_source;
  iface->write_nonblocking = bs_http_output_write_nonblocking;
}

static void
bs_http_output_finalize (GObject *object)
{
  BsHttpOutput *self = BS_HTTP_OUTPUT (object);

  stop_draining (self);
  g_byte_array_unref (self->unsent);
  g_object_unref (self->socket);
  G_OBJECT_CLASS (bs_http_output_parent_class)->finalize (object);
}

static void
bs_http_output_class_init (BsHttpOutputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = bs_http_output_finalize;
  output_class->write_fn = bs_http_output_write;
  output_class->flush = bs_http_output_flush;
  output_class->close_fn = bs_http_output_close;
}

static void
bs_http_output_init (BsHttpOutput *self)
{
  self->unsent = g_byte_array_new ();
}

BsHttpOutput *
bs_http_output_new (GSocket *socket)
{
  BsHttpOutput *self = g_object_new (BS_TYPE_HTTP_OUTPUT, NULL);

  self->socket = g_object_ref (socket);
  return self;
}

GBytes *
bs_http_output_take_unsent (BsHttpOutput *output)
{
  GBytes *unsent;

  stop_draining (output);
  if (output->unsent->len == 0)
    return NULL;
  unsent = g_byte_array_free_to_bytes (output->unsent);
  output->unsent = g_byte_array_new ();
  return unsent;
}
