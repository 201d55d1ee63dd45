/* bs-single-flight.h: callers that ask for the same check while it runs
 * share that one run. A burst of GET /health then costs one database ping
 * and one call to Books, not one per request (a client could otherwise make
 * a daemon send thousands). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BsSingleFlight BsSingleFlight;

/* Start the check; @callback(…, @callback_data) when it is done. */
typedef void (*BsSingleFlightStartFunc) (gpointer user_data, GAsyncReadyCallback callback,
                                         gpointer callback_data);
/* Its outcome: TRUE for healthy. */
typedef gboolean (*BsSingleFlightFinishFunc) (gpointer user_data, GAsyncResult *result);

/* @user_data must outlive every run. */
BsSingleFlight *bs_single_flight_new (BsSingleFlightStartFunc start_func,
                                      BsSingleFlightFinishFunc finish_func, gpointer user_data);
/* A run in progress still completes its callers, with FALSE (the finish
 * function is not called any more). */
void bs_single_flight_free (BsSingleFlight *flight);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsSingleFlight, bs_single_flight_free)

/* Join the run in progress, or start one. */
void bs_single_flight_run_async (BsSingleFlight *flight, GAsyncReadyCallback callback,
                                 gpointer user_data);
gboolean bs_single_flight_run_finish (BsSingleFlight *flight, GAsyncResult *result);

/* Runs started so far (for tests and metrics). */
guint64 bs_single_flight_get_runs (BsSingleFlight *flight);

G_END_DECLS
