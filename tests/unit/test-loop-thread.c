/* test-loop-thread.c: a loop thread runs its start and stop on its own
 * thread, with its own context as the thread default; bs-loop's sources land
 * there and are removed from there; a failed start is an error, not a thread
 * left running. */
#include "bs-loop-thread.h"
#include "bs-loop.h"

#include <gio/gio.h>

typedef struct
{
  GThread *start_thread;
  GThread *stop_thread;
  GMainContext *start_context;
  guint ticks;   /* atomic */
  guint invoked; /* atomic */
  guint timer_id;
  guint idle_id;
  gboolean fail;
} State;

static gboolean
tick (gpointer data)
{
  State *state = data;

  g_assert_true (g_main_context_get_thread_default () == state->start_context);
  g_atomic_int_inc (&state->ticks);
  return G_SOURCE_CONTINUE;
}

static gboolean
never (gpointer data)
{
  g_assert_not_reached ();
  return G_SOURCE_REMOVE;
}

static gboolean
start (gpointer data, GError **error)
{
  State *state = data;

  state->start_thread = g_thread_self ();
  state->start_context = g_main_context_get_thread_default ();
  if (state->fail)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "no start today");
      return FALSE;
    }
  g_assert_nonnull (state->start_context);
  g_assert_false (state->start_context == g_main_context_default ());
  state->timer_id = bs_timeout_add (1, tick, state);
  /* an idle on this loop removed before it runs: found in this context */
  state->idle_id = bs_idle_add (never, state);
  bs_source_remove (state->idle_id);
  return TRUE;
}

static void
stop (gpointer data)
{
  State *state = data;

  state->stop_thread = g_thread_self ();
  g_clear_handle_id (&state->timer_id, bs_source_remove);
}

static gboolean
invoked (gpointer data)
{
  State *state = data;

  g_assert_true (g_thread_self () == state->start_thread);
  g_atomic_int_inc (&state->invoked);
  return G_SOURCE_REMOVE;
}

static void
test_runs_on_its_own_context (void)
{
  State state = { 0 };
  g_autoptr (GError) error = NULL;
  BsLoopThread *thread = bs_loop_thread_new ("test-loop", start, stop, &state, &error);
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  g_assert_no_error (error);
  g_assert_nonnull (thread);
  g_assert_true (state.start_thread != g_thread_self ());
  g_assert_true (bs_loop_thread_get_context (thread) == state.start_context);
  bs_loop_thread_invoke (thread, invoked, &state);
  while ((g_atomic_int_get (&state.ticks) < 3 || g_atomic_int_get (&state.invoked) == 0)
         && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (g_atomic_int_get (&state.ticks), >=, 3);
  g_assert_cmpuint (g_atomic_int_get (&state.invoked), ==, 1);

  bs_loop_thread_free (thread);
  g_assert_true (state.stop_thread == state.start_thread);
  g_assert_cmpuint (state.timer_id, ==, 0);
}

static void
test_failed_start (void)
{
  State state = { .fail = TRUE };
  g_autoptr (GError) error = NULL;
  BsLoopThread *thread = bs_loop_thread_new ("test-loop", start, stop, &state, &error);

  g_assert_null (thread);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_null (state.stop_thread); /* stop only after a start that worked */
}

/* On the main thread (no thread default) bs-loop uses the global default
 * context, as g_timeout_add() does. */
static void
test_main_thread_uses_the_default_context (void)
{
  guint id = bs_timeout_add (60000, never, NULL);

  g_assert_nonnull (g_main_context_find_source_by_id (g_main_context_default (), id));
  bs_source_remove (id);
  g_assert_null (g_main_context_find_source_by_id (g_main_context_default (), id));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bs/loop-thread/own-context", test_runs_on_its_own_context);
  g_test_add_func ("/bs/loop-thread/failed-start", test_failed_start);
  g_test_add_func ("/bs/loop/main-thread", test_main_thread_uses_the_default_context);
  return g_test_run ();
}
