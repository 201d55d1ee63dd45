/* bs-loop.h: sources on the calling thread's own main context.
 *
 * A daemon may serve from several event loops, one per thread, each with its
 * own GMainContext pushed as the thread default. Code that runs on those
 * loops (the HTTP server, the database pool) adds its timers and watches
 * here rather than with g_timeout_add(), which always picks the global
 * default context, and removes them with bs_source_remove(), which looks the
 * id up in the same context (g_source_remove() looks in the global one). */
#pragma once

#include <glib-unix.h>

G_BEGIN_DECLS

guint bs_timeout_add (guint interval_ms, GSourceFunc func, gpointer data);
guint bs_timeout_add_seconds (guint interval_s, GSourceFunc func, gpointer data);
guint bs_idle_add (GSourceFunc func, gpointer data);
/* @func must not run a nested main loop (the watch may recurse: see bs-loop.c). */
guint bs_fd_add (int fd, GIOCondition condition, GUnixFDSourceFunc func, gpointer data);

/* Call @func(@data) soon on @context's loop (NULL: the global default, the
 * main thread's), from any thread; @destroy (may be NULL) frees @data after. */
void bs_invoke_on (GMainContext *context, GSourceFunc func, gpointer data, GDestroyNotify destroy);

/* For g_clear_handle_id(): destroys source @id of this thread's context. */
void bs_source_remove (guint id);

G_END_DECLS
