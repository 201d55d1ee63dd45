/* bs-loop-thread.h: a thread running a GLib main loop of its own.
 *
 * The thread pushes a new GMainContext as its thread default, calls @start
 * there (which sets up whatever that loop serves; sources it adds land on
 * the new context), and runs the loop until bs_loop_thread_free(), which
 * quits it, calls @stop there and joins the thread. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BsLoopThread BsLoopThread;

/* Runs on the new thread before its loop; FALSE (with @error set) ends it. */
typedef gboolean (*BsLoopThreadStart) (gpointer user_data, GError **error);
/* Runs on the thread after its loop ended. */
typedef void (*BsLoopThreadStop) (gpointer user_data);

/* Waits until @start returned; NULL when it failed or the thread could not
 * be created. */
BsLoopThread *bs_loop_thread_new (const char *name, BsLoopThreadStart start, BsLoopThreadStop stop,
                                  gpointer user_data, GError **error);
void bs_loop_thread_free (BsLoopThread *thread);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsLoopThread, bs_loop_thread_free)

GMainContext *bs_loop_thread_get_context (BsLoopThread *thread);

/* Call @func(@data) on the thread's loop soon (from any thread). */
void bs_loop_thread_invoke (BsLoopThread *thread, GSourceFunc func, gpointer data);

G_END_DECLS
