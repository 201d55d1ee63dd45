/* bs-http-listener.h: our own accept loop on a listening socket.
 *
 * libsoup 3.2.3's listener stops for good after one failed accept (EMFILE);
 * this one pauses instead (nginx does the same, for 500 ms), keeps the
 * connections it has, and then accepts again. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BS_HTTP_ACCEPT_PAUSE_MS 500

typedef struct _BsHttpListener BsHttpListener;

/* A new connection (non-blocking); the callback takes @socket over. */
typedef void (*BsHttpAcceptFunc) (GSocket *socket, gpointer user_data);
/* Accepting paused (@paused TRUE) after @error, or resumed. */
typedef void (*BsHttpPauseFunc) (gboolean paused, const char *error, gpointer user_data);

/* Watches @socket (listening, non-blocking) on the thread-default context. */
BsHttpListener *bs_http_listener_new (GSocket *socket, BsHttpAcceptFunc accept_func,
                                      BsHttpPauseFunc pause_func, gpointer user_data);
void bs_http_listener_free (BsHttpListener *listener);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsHttpListener, bs_http_listener_free)

/* Leave new connections in the listen backlog for @ms (no-op when paused
 * already); the pause function is not called. */
void bs_http_listener_pause (BsHttpListener *listener, guint ms);

/* Stop accepting for good (the socket is left as it is). */
void bs_http_listener_stop (BsHttpListener *listener);

G_END_DECLS
