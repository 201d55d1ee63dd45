/* bs-socket-watch.c: wait for a socket to become readable without changing
 * the loop's poll set; see the header.
 *
 * Two kinds of source: the keeper, attached once, holds the GPollFD (ours,
 * so that its events can change between two polls without telling GLib);
 * each wait gets a readiness source without a descriptor, whose check reads
 * the revents that GLib wrote into that GPollFD. The keeper is of high
 * priority so that the descriptor is in every poll that could dispatch a
 * waiter, and it may recurse, so that GLib never takes it out of the set. */
#include "bs-socket-watch.h"

#define ENDING (G_IO_ERR | G_IO_HUP | G_IO_NVAL)

struct _BsSocketWatch
{
  grefcount ref_count;
  GSource *keeper; /* NULL once closed */
  GPollFD poll;
  GPtrArray *waiters; /* the readiness sources alive (not references) */
  gboolean ended;     /* closed, or an error or hang-up came with no one waiting */
};

typedef struct
{
  GSource parent;
  BsSocketWatch *watch; /* the keeper's owner: not a reference */
} KeeperSource;

typedef struct
{
  GSource parent;
  BsSocketWatch *watch; /* a reference */
} ReadySource;

static BsSocketWatch *
watch_ref (BsSocketWatch *watch)
{
  g_ref_count_inc (&watch->ref_count);
  return watch;
}

static gboolean
keeper_check (GSource *source)
{
  BsSocketWatch *watch = ((KeeperSource *) source)->watch;

  if (watch->poll.revents == 0)
    return FALSE;
  /* a waiter's own check sees it; one destroyed but still referenced does
   * not, and must not leave the socket asked for */
  for (guint i = 0; i < watch->waiters->len; i++)
    if (!g_source_is_destroyed (g_ptr_array_index (watch->waiters, i)))
      return FALSE;
  if ((watch->poll.revents & ENDING) != 0)
    return TRUE; /* reported whatever the events asked: stop polling */
  watch->poll.events = 0;
  return FALSE;
}

static gboolean
keeper_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  BsSocketWatch *watch = ((KeeperSource *) source)->watch;

  /* An error or hang-up with no one waiting would end every poll at once
   * until someone reads: take the socket out; the next wait ends at once. */
  watch->ended = TRUE;
  g_clear_pointer (&watch->keeper, g_source_unref);
  return G_SOURCE_REMOVE;
}

static GSourceFuncs keeper_funcs = { NULL, keeper_check, keeper_dispatch, NULL, NULL, NULL };

static gboolean
ready_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return ((ReadySource *) source)->watch->ended;
}

static gboolean
ready_check (GSource *source)
{
  BsSocketWatch *watch = ((ReadySource *) source)->watch;

  return watch->ended || (watch->poll.revents & (G_IO_IN | ENDING)) != 0;
}

static gboolean
ready_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return G_SOURCE_CONTINUE; /* its parent does the work */
}

static void
ready_finalize (GSource *source)
{
  BsSocketWatch *watch = ((ReadySource *) source)->watch;

  g_ptr_array_remove_fast (watch->waiters, source);
  if (watch->waiters->len == 0)
    watch->poll.events = 0;
  bs_socket_watch_unref (watch);
}

static GSourceFuncs ready_funcs
    = { ready_prepare, ready_check, ready_dispatch, ready_finalize, NULL, NULL };

BsSocketWatch *
bs_socket_watch_new (int fd)
{
  BsSocketWatch *watch = g_new0 (BsSocketWatch, 1);
  GSource *keeper = g_source_new (&keeper_funcs, sizeof (KeeperSource));

  g_ref_count_init (&watch->ref_count);
  watch->waiters = g_ptr_array_new ();
  watch->poll.fd = fd;
  ((KeeperSource *) keeper)->watch = watch;
  g_source_set_name (keeper, "bs-socket-watch");
  g_source_set_priority (keeper, G_PRIORITY_HIGH);
  g_source_set_can_recurse (keeper, TRUE);
  g_source_add_poll (keeper, &watch->poll);
  g_source_attach (keeper, g_main_context_get_thread_default ());
  watch->keeper = keeper;
  return watch;
}

void
bs_socket_watch_close (BsSocketWatch *watch)
{
  watch->ended = TRUE;
  watch->poll.events = 0;
  if (watch->keeper != NULL)
    {
      g_source_destroy (watch->keeper);
      g_clear_pointer (&watch->keeper, g_source_unref);
    }
}

void
bs_socket_watch_unref (BsSocketWatch *watch)
{
  if (!g_ref_count_dec (&watch->ref_count))
    return;
  bs_socket_watch_close (watch);
  g_ptr_array_unref (watch->waiters);
  g_free (watch);
}

GSource *
bs_socket_watch_create_source (BsSocketWatch *watch)
{
  GSource *source = g_source_new (&ready_funcs, sizeof (ReadySource));

  ((ReadySource *) source)->watch = watch_ref (watch);
  g_source_set_name (source, "bs-socket-watch readable");
  g_source_set_can_recurse (source, TRUE);
  g_ptr_array_add (watch->waiters, source);
  if (!watch->ended)
    watch->poll.events = G_IO_IN;
  return source;
}
