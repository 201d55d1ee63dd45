/* bs-loop-thread.c: see bs-loop-thread.h. */
#include "bs-loop-thread.h"

#include "bs-loop.h"

struct _BsLoopThread
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  BsLoopThreadStart start;
  BsLoopThreadStop stop;
  gpointer user_data;

  GMutex lock; /* guards the three below, until the start is over */
  GCond cond;
  gboolean started;
  GError *start_error;
};

static gpointer
thread_main (gpointer data)
{
  BsLoopThread *self = data;
  GError *error = NULL;
  gboolean ok;

  g_main_context_push_thread_default (self->context);
  ok = self->start (self->user_data, &error);

  g_mutex_lock (&self->lock);
  self->started = TRUE;
  self->start_error = error;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);

  if (ok)
    {
      g_main_loop_run (self->loop);
      self->stop (self->user_data);
    }
  /* what the loop left undispatched (invocations after the quit) is
   * destroyed with the context, on this thread */
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

BsLoopThread *
bs_loop_thread_new (const char *name, BsLoopThreadStart start, BsLoopThreadStop stop,
                    gpointer user_data, GError **error)
{
  BsLoopThread *self = g_new0 (BsLoopThread, 1);

  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->start = start;
  self->stop = stop;
  self->user_data = user_data;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->thread = g_thread_try_new (name, thread_main, self, error);
  if (self->thread == NULL)
    {
      bs_loop_thread_free (self);
      return NULL;
    }

  g_mutex_lock (&self->lock);
  while (!self->started)
    g_cond_wait (&self->cond, &self->lock);
  g_mutex_unlock (&self->lock);
  if (self->start_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->start_error));
      bs_loop_thread_free (self);
      return NULL;
    }
  return self;
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

void
bs_loop_thread_free (BsLoopThread *self)
{
  if (self == NULL)
    return;
  if (self->thread != NULL)
    {
      bs_loop_thread_invoke (self, quit_cb, self->loop);
      g_thread_join (self->thread);
    }
  g_clear_error (&self->start_error);
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

GMainContext *
bs_loop_thread_get_context (BsLoopThread *self)
{
  return self->context;
}

void
bs_loop_thread_invoke (BsLoopThread *self, GSourceFunc func, gpointer data)
{
  bs_invoke_on (self->context, func, data, NULL);
}
