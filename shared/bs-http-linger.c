/* bs-http-linger.c: see bs-http-linger.h. */
#include "bs-http-linger.h"

#include <sys/socket.h>

#define LINGER_MAX_BYTES (1024 * 1024)

typedef struct
{
  GSocket *socket;
  GSource *read_source;
  GSource *timeout_source;
  gsize discarded;
  GDestroyNotify done;
  gpointer user_data;
} Linger;

static void
linger_finish (Linger *linger)
{
  g_source_destroy (linger->read_source);
  g_source_unref (linger->read_source);
  g_source_destroy (linger->timeout_source);
  g_source_unref (linger->timeout_source);
  g_socket_close (linger->socket, NULL);
  g_object_unref (linger->socket);
  if (linger->done != NULL)
    linger->done (linger->user_data);
  g_free (linger);
}

static gboolean
linger_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  Linger *linger = user_data;
  char buffer[16384];

  for (;;)
    {
      gssize n = g_socket_receive_with_blocking (socket, buffer, sizeof buffer, FALSE, NULL, NULL);
      if (n < 0 && g_socket_condition_check (socket, G_IO_IN) == 0)
        return G_SOURCE_CONTINUE; /* nothing more for now */
      if (n <= 0 || (linger->discarded += (gsize) n) > LINGER_MAX_BYTES)
        break;
    }
  linger_finish (linger);
  return G_SOURCE_REMOVE;
}

static gboolean
linger_timeout (gpointer user_data)
{
  linger_finish (user_data);
  return G_SOURCE_REMOVE;
}

void
bs_http_linger_start (GSocket *socket, GBytes *response, guint linger_ms, GDestroyNotify done,
                      gpointer user_data)
{
  Linger *linger = g_new0 (Linger, 1);
  gsize len = 0;
  const char *data = g_bytes_get_data (response, &len);

  linger->socket = g_object_ref (socket);
  linger->done = done;
  linger->user_data = user_data;
  if (len > 0)
    g_socket_send_with_blocking (socket, data, len, FALSE, NULL, NULL);
  shutdown (g_socket_get_fd (socket), SHUT_WR);
  linger->read_source = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (linger->read_source, G_SOURCE_FUNC (linger_readable), linger, NULL);
  g_source_attach (linger->read_source, g_main_context_get_thread_default ());
  linger->timeout_source = g_timeout_source_new (linger_ms);
  g_source_set_callback (linger->timeout_source, linger_timeout, linger, NULL);
  g_source_attach (linger->timeout_source, g_main_context_get_thread_default ());
}
