/* test-socket-watch.c: a waiter's source is ready when the socket is
 * readable, not before; a hang-up that no one waits for does not keep the
 * loop spinning, and the next waiter sees it at once; closing the watch
 * wakes the waiter. Over a socketpair, on a context of the test's own. */
#include "bs-socket-watch.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct
{
  GMainContext *context;
  int fds[2];
  BsSocketWatch *watch;
  guint dispatched;
} Fixture;

static gboolean
parent_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

static GSourceFuncs parent_funcs = { NULL, NULL, parent_dispatch, NULL, NULL, NULL };

static gboolean
count_and_stop (gpointer data)
{
  Fixture *fixture = data;

  fixture->dispatched++;
  return G_SOURCE_REMOVE;
}

/* As libsoup does: a source of its own with the watch's as a child. */
static GSource *
wait_readable (Fixture *fixture)
{
  GSource *parent = g_source_new (&parent_funcs, sizeof (GSource));
  g_autoptr (GSource) child = bs_socket_watch_create_source (fixture->watch);

  g_source_add_child_source (parent, child);
  g_source_set_callback (parent, count_and_stop, fixture, NULL);
  g_source_attach (parent, fixture->context);
  return parent;
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterations of the loop until a timer of @ms fires: 1 or 2 for an idle
 * loop, thousands for one that polls a descriptor that is always ready. */
static guint
iterations_during (Fixture *fixture, guint ms)
{
  g_autoptr (GSource) timer = g_timeout_source_new (ms);
  gboolean fired = FALSE;
  guint n = 0;

  g_source_set_callback (timer, set_flag, &fired, NULL);
  g_source_attach (timer, fixture->context);
  while (!fired)
    {
      g_main_context_iteration (fixture->context, TRUE);
      n++;
    }
  return n;
}

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fixture->fds), ==, 0);
  fixture->watch = bs_socket_watch_new (fixture->fds[0]);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  bs_socket_watch_unref (fixture->watch);
  close (fixture->fds[0]);
  if (fixture->fds[1] >= 0)
    close (fixture->fds[1]);
  while (g_main_context_iteration (fixture->context, FALSE))
    ;
  g_main_context_pop_thread_default (fixture->context);
  g_main_context_unref (fixture->context);
}

static void
test_ready_when_readable (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GSource) wait = wait_readable (fixture);

  g_assert_cmpuint (iterations_during (fixture, 50), <=, 2);
  g_assert_cmpuint (fixture->dispatched, ==, 0);
  g_assert_cmpint (write (fixture->fds[1], "x", 1), ==, 1);
  g_main_context_iteration (fixture->context, TRUE);
  g_assert_cmpuint (fixture->dispatched, ==, 1);
  g_assert_true (g_source_is_destroyed (wait));
}

/* Bytes that arrive while no one waits do not wake the loop; the next
 * waiter is ready at once. */
static void
test_data_without_a_waiter (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GSource) first = wait_readable (fixture);
  g_autoptr (GSource) second = NULL;

  g_source_destroy (first);
  g_assert_cmpint (write (fixture->fds[1], "x", 1), ==, 1);
  g_assert_cmpuint (iterations_during (fixture, 50), <=, 3);
  g_assert_cmpuint (fixture->dispatched, ==, 0);
  second = wait_readable (fixture);
  g_main_context_iteration (fixture->context, TRUE);
  g_assert_cmpuint (fixture->dispatched, ==, 1);
}

/* A waiter destroyed while someone still holds it does not wait: the socket
 * is not asked for on its behalf. */
static void
test_destroyed_waiter_still_held (Fixture *fixture, gconstpointer data)
{
  GSource *parent = g_source_new (&parent_funcs, sizeof (GSource));
  g_autoptr (GSource) child = bs_socket_watch_create_source (fixture->watch);

  g_source_add_child_source (parent, child);
  g_source_set_callback (parent, count_and_stop, fixture, NULL);
  g_source_attach (parent, fixture->context);
  g_source_destroy (parent);
  g_source_unref (parent);
  g_assert_cmpint (write (fixture->fds[1], "x", 1), ==, 1);
  g_assert_cmpuint (iterations_during (fixture, 50), <=, 3);
  g_assert_cmpuint (fixture->dispatched, ==, 0);
}

static void
test_hang_up_without_a_waiter (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GSource) first = wait_readable (fixture);
  g_autoptr (GSource) second = NULL;

  g_source_destroy (first);
  close (fixture->fds[1]);
  fixture->fds[1] = -1;
  /* poll(2) reports a hang-up whatever it was asked for */
  g_assert_cmpuint (iterations_during (fixture, 50), <=, 3);
  second = wait_readable (fixture);
  g_assert_cmpuint (iterations_during (fixture, 1), <=, 2);
  g_assert_cmpuint (fixture->dispatched, ==, 1);
}

static void
test_close_wakes_the_waiter (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GSource) wait = wait_readable (fixture);

  g_assert_cmpuint (iterations_during (fixture, 20), <=, 2);
  bs_socket_watch_close (fixture->watch);
  g_main_context_iteration (fixture->context, TRUE);
  g_assert_cmpuint (fixture->dispatched, ==, 1);
  g_assert_true (g_source_is_destroyed (wait));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/bs/socket-watch/ready-when-readable", Fixture, NULL, fixture_set_up,
              test_ready_when_readable, fixture_tear_down);
  g_test_add ("/bs/socket-watch/data-without-a-waiter", Fixture, NULL, fixture_set_up,
              test_data_without_a_waiter, fixture_tear_down);
  g_test_add ("/bs/socket-watch/destroyed-waiter-still-held", Fixture, NULL, fixture_set_up,
              test_destroyed_waiter_still_held, fixture_tear_down);
  g_test_add ("/bs/socket-watch/hang-up-without-a-waiter", Fixture, NULL, fixture_set_up,
              test_hang_up_without_a_waiter, fixture_tear_down);
  g_test_add ("/bs/socket-watch/close-wakes-the-waiter", Fixture, NULL, fixture_set_up,
              test_close_wakes_the_waiter, fixture_tear_down);
  return g_test_run ();
}
