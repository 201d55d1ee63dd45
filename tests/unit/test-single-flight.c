/* test-single-flight.c: callers share the run in progress; a caller after it
 * starts a new one; a run outlives the flight's owner. */
#include "bs-single-flight.h"

#include <gio/gio.h>

typedef struct
{
  guint starts;
  gboolean outcome;
  GTask *pending; /* the run in progress: completed by complete_run() */
} Check;

static void
check_start (gpointer user_data, GAsyncReadyCallback callback, gpointer callback_data)
{
  Check *check = user_data;

  check->starts++;
  g_assert_null (check->pending);
  check->pending = g_task_new (NULL, NULL, callback, callback_data);
}

static gboolean
check_finish (gpointer user_data, GAsyncResult *result)
{
  return g_task_propagate_boolean (G_TASK (result), NULL);
}

static void
complete_run (Check *check)
{
  g_autoptr (GTask) task = g_steal_pointer (&check->pending);

  g_task_return_boolean (task, check->outcome);
}

typedef struct
{
  BsSingleFlight *flight;
  guint answers;
  gboolean last;
} Caller;

static void
answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Caller *caller = user_data;

  caller->last = caller->flight != NULL ? bs_single_flight_run_finish (caller->flight, result)
                                        : g_task_propagate_boolean (G_TASK (result), NULL);
  caller->answers++;
}

static void
wait_answers (Caller *caller, guint n)
{
  while (caller->answers < n)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_callers_share_a_run (void)
{
  Check check = { .outcome = TRUE };
  g_autoptr (BsSingleFlight) flight = bs_single_flight_new (check_start, check_finish, &check);
  Caller caller = { .flight = flight };

  for (guint i = 0; i < 100; i++)
    bs_single_flight_run_async (flight, answered, &caller);
  g_assert_cmpuint (check.starts, ==, 1);
  complete_run (&check);
  wait_answers (&caller, 100);
  g_assert_true (caller.last);
  g_assert_cmpuint (bs_single_flight_get_runs (flight), ==, 1);

  /* after it: a new run, with its own outcome */
  check.outcome = FALSE;
  bs_single_flight_run_async (flight, answered, &caller);
  g_assert_cmpuint (check.starts, ==, 2);
  complete_run (&check);
  wait_answers (&caller, 101);
  g_assert_false (caller.last);
}

static void
test_run_outlives_the_flight (void)
{
  Check check = { .outcome = TRUE };
  BsSingleFlight *flight = bs_single_flight_new (check_start, check_finish, &check);
  Caller caller = { 0 }; /* reads the task itself: the flight is gone */

  bs_single_flight_run_async (flight, answered, &caller);
  bs_single_flight_run_async (flight, answered, &caller);
  bs_single_flight_free (flight);
  complete_run (&check);
  wait_answers (&caller, 2);
  g_assert_false (caller.last); /* freed: FALSE, without the finish function */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/single-flight/shared", test_callers_share_a_run);
  g_test_add_func ("/single-flight/outlives", test_run_outlives_the_flight);
  return g_test_run ();
}
