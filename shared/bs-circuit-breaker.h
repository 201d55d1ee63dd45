/* bs-circuit-breaker.h: stop calling a dependency that keeps failing.
 *
 * Closed: calls go through; @failure_threshold consecutive failures open it.
 * Open: calls are refused at once until @cooldown_ms have passed.
 * Half-open: exactly one call (the probe) goes through; its success closes
 * the circuit, its failure opens it for another cooldown.
 *
 * One breaker may serve several event loops (threads): it is the state of
 * one dependency. Its lock is held for a few instructions per call, and the
 * state function is called with it held: keep it short (it may read the
 * state). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  BS_CIRCUIT_CLOSED = 0,
  BS_CIRCUIT_OPEN = 1,
  BS_CIRCUIT_HALF_OPEN = 2,
} BsCircuitState;

typedef struct _BsCircuitBreaker BsCircuitBreaker;

/* What allow() hands out: report the outcome of the call with it. */
typedef struct
{
  guint64 generation;
  gboolean probe;
} BsCircuitPermit;

/* Called after every state change. */
typedef void (*BsCircuitStateFunc) (BsCircuitBreaker *breaker, BsCircuitState state,
                                    gpointer user_data);
/* Monotonic microseconds; g_get_monotonic_time() unless a test sets one. */
typedef gint64 (*BsCircuitClockFunc) (gpointer user_data);

BsCircuitBreaker *bs_circuit_breaker_new (guint failure_threshold, guint cooldown_ms);
/* Another reference, for another user of the same breaker. */
BsCircuitBreaker *bs_circuit_breaker_ref (BsCircuitBreaker *breaker);
/* Drops one reference; the last frees it. */
void bs_circuit_breaker_free (BsCircuitBreaker *breaker);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsCircuitBreaker, bs_circuit_breaker_free)

void bs_circuit_breaker_set_state_func (BsCircuitBreaker *breaker, BsCircuitStateFunc func,
                                        gpointer user_data);
void bs_circuit_breaker_set_clock (BsCircuitBreaker *breaker, BsCircuitClockFunc func,
                                   gpointer user_data);

/* TRUE when a call may go ahead; then report it with exactly one of
 * record()/release(). FALSE when refused; *@retry_after_ms (may be NULL)
 * says how long until a call may be allowed again (at least 1 ms). */
gboolean bs_circuit_breaker_allow (BsCircuitBreaker *breaker, BsCircuitPermit *permit,
                                   guint *retry_after_ms);
/* The call finished and the dependency worked (@success) or failed.
 * Outcomes of calls let through before the last state change are ignored. */
void bs_circuit_breaker_record (BsCircuitBreaker *breaker, const BsCircuitPermit *permit,
                                gboolean success);
/* The call ended without telling anything about the dependency (cancelled
 * by our side): a probe's turn passes to the next call. */
void bs_circuit_breaker_release (BsCircuitBreaker *breaker, const BsCircuitPermit *permit);

BsCircuitState bs_circuit_breaker_get_state (BsCircuitBreaker *breaker);
/* "closed", "open", "half-open". */
const char *bs_circuit_state_to_string (BsCircuitState state);

G_END_DECLS
