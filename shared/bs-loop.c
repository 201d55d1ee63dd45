/* bs-loop.c: sources on the calling thread's own main context. */
#include "bs-loop.h"

static guint
attach_here (GSource *source, GSourceFunc func, gpointer data)
{
  g_source_set_callback (source, func, data, NULL);
  return g_source_attach (source, g_main_context_get_thread_default ());
}

guint
bs_timeout_add (guint interval_ms, GSourceFunc func, gpointer data)
{
  g_autoptr (GSource) source = g_timeout_source_new (interval_ms);

  return attach_here (source, func, data);
}

guint
bs_timeout_add_seconds (guint interval_s, GSourceFunc func, gpointer data)
{
  g_autoptr (GSource) source = g_timeout_source_new_seconds (interval_s);

  return attach_here (source, func, data);
}

guint
bs_idle_add (GSourceFunc func, gpointer data)
{
  g_autoptr (GSource) source = g_idle_source_new ();

  return attach_here (source, func, data);
}

guint
bs_fd_add (int fd, GIOCondition condition, GUnixFDSourceFunc func, gpointer data)
{
  g_autoptr (GSource) source = g_unix_fd_source_new (fd, condition);

  /* GLib 2.74 takes a source's fds out of the poll set while it is
   * dispatched and puts them back after, and each of those signals the
   * context's eventfd: two write(2) per dispatch. Our watches never run a
   * nested loop, so they may "recurse", which skips that. */
  g_source_set_can_recurse (source, TRUE);
  return attach_here (source, G_SOURCE_FUNC (func), data);
}

void
bs_invoke_on (GMainContext *context, GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  g_autoptr (GSource) source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, data, destroy);
  g_source_attach (source, context != NULL ? context : g_main_context_default ());
}

void
bs_source_remove (guint id)
{
  GMainContext *context = g_main_context_get_thread_default ();
  GSource *source = g_main_context_find_source_by_id (
      context != NULL ? context : g_main_context_default (), id);

  if (source != NULL)
    g_source_destroy (source);
  else
    g_critical ("source %u not found in this thread's main context", id);
}
