/* bs-http-listener.c: see bs-http-listener.h. */
#define _GNU_SOURCE
#include "bs-http-listener.h"

#include "bs-loop.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections taken per wake-up before other sources get a turn. */
#define ACCEPT_BATCH 64

struct _BsHttpListener
{
  GSocket *socket;
  GSource *source;
  guint resume_id;
  gboolean stopped;
  BsHttpAcceptFunc accept_func;
  BsHttpPauseFunc pause_func;
  gpointer user_data;
};

static void watch (BsHttpListener *listener);

static gboolean
resume_after_error (gpointer user_data)
{
  BsHttpListener *listener = user_data;

  listener->resume_id = 0;
  if (listener->pause_func != NULL)
    listener->pause_func (FALSE, NULL, listener->user_data);
  watch (listener);
  return G_SOURCE_REMOVE;
}

static gboolean
resume (gpointer user_data)
{
  BsHttpListener *listener = user_data;

  listener->resume_id = 0;
  watch (listener);
  return G_SOURCE_REMOVE;
}

static void
pause_accepting (BsHttpListener *listener, int saved_errno)
{
  g_clear_pointer (&listener->source, g_source_destroy);
  g_clear_handle_id (&listener->resume_id, bs_source_remove);
  listener->resume_id = bs_timeout_add (BS_HTTP_ACCEPT_PAUSE_MS, resume_after_error, listener);
  if (listener->pause_func != NULL)
    listener->pause_func (TRUE, g_strerror (saved_errno), listener->user_data);
}

void
bs_http_listener_pause (BsHttpListener *listener, guint ms)
{
  if (listener->stopped || listener->resume_id != 0)
    return; /* paused already */
  g_clear_pointer (&listener->source, g_source_destroy);
  listener->resume_id = bs_timeout_add (MAX (ms, 1), resume, listener);
}

/* Errors of the connection being accepted (it went away first): skip it. */
static gboolean
is_connection_error (int e)
{
  return e == ECONNABORTED || e == EPROTO || e == EPERM || e == ENETDOWN || e == ENOPROTOOPT
         || e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP
         || e == ENETUNREACH || e == EINTR;
}

static gboolean
accept_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  BsHttpListener *listener = user_data;
  int listen_fd = g_socket_get_fd (listener->socket);

  for (guint i = 0; i < ACCEPT_BATCH && !listener->stopped && listener->source != NULL; i++)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      int one = 1;
      GSocket *client;

      if (fd < 0)
        {
          int e = errno;
          if (e == EAGAIN || e == EWOULDBLOCK)
            break;
          if (is_connection_error (e))
            continue;
          /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or the socket was shut down */
          pause_accepting (listener, e);
          return G_SOURCE_REMOVE;
        }
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      client = g_socket_new_from_fd (fd, NULL);
      if (client == NULL)
        {
          close (fd);
          continue;
        }
      listener->accept_func (client, listener->user_data);
    }
  return G_SOURCE_CONTINUE;
}

static void
watch (BsHttpListener *listener)
{
  if (listener->stopped || listener->source != NULL)
    return;
  listener->source = g_socket_create_source (listener->socket, G_IO_IN, NULL);
  g_source_set_callback (listener->source, G_SOURCE_FUNC (accept_ready), listener, NULL);
  g_source_attach (listener->source, g_main_context_get_thread_default ());
  g_source_unref (listener->source); /* the context holds it; destroyed by us */
}

BsHttpListener *
bs_http_listener_new (GSocket *socket, BsHttpAcceptFunc accept_func, BsHttpPauseFunc pause_func,
                      gpointer user_data)
{
  BsHttpListener *listener = g_new0 (BsHttpListener, 1);

  listener->socket = g_object_ref (socket);
  listener->accept_func = accept_func;
  listener->pause_func = pause_func;
  listener->user_data = user_data;
  watch (listener);
  return listener;
}

void
bs_http_listener_stop (BsHttpListener *listener)
{
  listener->stopped = TRUE;
  g_clear_pointer (&listener->source, g_source_destroy);
  g_clear_handle_id (&listener->resume_id, bs_source_remove);
}

void
bs_http_listener_free (BsHttpListener *listener)
{
  if (listener == NULL)
    return;
  bs_http_listener_stop (listener);
  g_clear_object (&listener->socket);
  g_free (listener);
}
