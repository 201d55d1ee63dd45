/* bs-single-flight.c: one run of a check for every caller waiting on it. */
#include "bs-single-flight.h"

struct _BsSingleFlight
{
  BsSingleFlightStartFunc start_func;
  BsSingleFlightFinishFunc finish_func;
  gpointer user_data;
  GPtrArray *waiting; /* GTask: the callers of the run in progress; NULL when none */
  guint64 runs;
  gboolean freed; /* by its owner, while a run was in progress */
};

BsSingleFlight *
bs_single_flight_new (BsSingleFlightStartFunc start_func, BsSingleFlightFinishFunc finish_func,
                      gpointer user_data)
{
  BsSingleFlight *flight = g_new0 (BsSingleFlight, 1);

  flight->start_func = start_func;
  flight->finish_func = finish_func;
  flight->user_data = user_data;
  return flight;
}

void
bs_single_flight_free (BsSingleFlight *flight)
{
  if (flight == NULL)
    return;
  if (flight->waiting != NULL)
    {
      flight->freed = TRUE; /* run_done frees it */
      return;
    }
  g_free (flight);
}

static void
run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BsSingleFlight *flight = user_data;
  g_autoptr (GPtrArray) waiting = g_steal_pointer (&flight->waiting);
  /* once freed, its user_data may be gone too */
  gboolean healthy = !flight->freed && flight->finish_func (flight->user_data, result);

  /* callers that ask from their callbacks start a new run */
  for (guint i = 0; i < waiting->len; i++)
    g_task_return_boolean (g_ptr_array_index (waiting, i), healthy);
  if (flight->freed)
    g_free (flight);
}

void
bs_single_flight_run_async (BsSingleFlight *flight, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  gboolean start = flight->waiting == NULL;

  g_task_set_source_tag (task, bs_single_flight_run_async);
  if (start)
    flight->waiting = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (flight->waiting, task);
  if (start)
    {
      flight->runs++;
      flight->start_func (flight->user_data, run_done, flight);
    }
}

gboolean
bs_single_flight_run_finish (BsSingleFlight *flight, GAsyncResult *result)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), NULL);
}

guint64
bs_single_flight_get_runs (BsSingleFlight *flight)
{
  return flight->runs;
}
