/* bs-circuit-breaker.c: a three-state circuit breaker; no I/O, no timers. */
#include "bs-circuit-breaker.h"

struct _BsCircuitBreaker
{
  GRecMutex lock; /* recursive: the state function may read the state */
  guint failure_threshold;
  gint64 cooldown_us;

  BsCircuitState state;
  guint64 generation;         /* bumped on every state change */
  guint consecutive_failures; /* while closed */
  gint64 opened_at_us;        /* while open */
  gboolean probe_in_flight;   /* while half-open */

  BsCircuitStateFunc state_func;
  gpointer state_data;
  BsCircuitClockFunc clock;
  gpointer clock_data;
};

static gint64
default_clock (gpointer user_data)
{
  return g_get_monotonic_time ();
}

BsCircuitBreaker *
bs_circuit_breaker_new (guint failure_threshold, guint cooldown_ms)
{
  BsCircuitBreaker *breaker = g_atomic_rc_box_new0 (BsCircuitBreaker);

  g_rec_mutex_init (&breaker->lock);

  breaker->failure_threshold = MAX (failure_threshold, 1);
  breaker->cooldown_us = (gint64) MAX (cooldown_ms, 1) * 1000;
  breaker->state = BS_CIRCUIT_CLOSED;
  breaker->clock = default_clock;
  return breaker;
}

BsCircuitBreaker *
bs_circuit_breaker_ref (BsCircuitBreaker *breaker)
{
  return g_atomic_rc_box_acquire (breaker);
}

static void
breaker_clear (gpointer data)
{
  g_rec_mutex_clear (&((BsCircuitBreaker *) data)->lock);
}

void
bs_circuit_breaker_free (BsCircuitBreaker *breaker)
{
  if (breaker != NULL)
    g_atomic_rc_box_release_full (breaker, breaker_clear);
}

void
bs_circuit_breaker_set_state_func (BsCircuitBreaker *breaker, BsCircuitStateFunc func,
                                   gpointer user_data)
{
  g_rec_mutex_lock (&breaker->lock);
  breaker->state_func = func;
  breaker->state_data = user_data;
  g_rec_mutex_unlock (&breaker->lock);
}

void
bs_circuit_breaker_set_clock (BsCircuitBreaker *breaker, BsCircuitClockFunc func,
                              gpointer user_data)
{
  breaker->clock = func != NULL ? func : default_clock;
  breaker->clock_data = user_data;
}

static void
change_state (BsCircuitBreaker *breaker, BsCircuitState state)
{
  breaker->state = state;
  breaker->generation++;
  breaker->consecutive_failures = 0;
  breaker->probe_in_flight = FALSE;
  if (state == BS_CIRCUIT_OPEN)
    breaker->opened_at_us = breaker->clock (breaker->clock_data);
  if (breaker->state_func != NULL)
    breaker->state_func (breaker, state, breaker->state_data);
}

static gboolean
allow_locked (BsCircuitBreaker *breaker, BsCircuitPermit *permit, guint *retry_after_ms)
{
  guint wait_ms = 1;

  if (breaker->state == BS_CIRCUIT_OPEN)
    {
      gint64 left_us
          = breaker->opened_at_us + breaker->cooldown_us - breaker->clock (breaker->clock_data);

      if (left_us > 0)
        wait_ms = (guint) MAX ((left_us + 999) / 1000, 1);
      else
        change_state (breaker, BS_CIRCUIT_HALF_OPEN);
    }

  switch (breaker->state)
    {
      case BS_CIRCUIT_CLOSED:
        permit->generation = breaker->generation;
        permit->probe = FALSE;
        return TRUE;
      case BS_CIRCUIT_HALF_OPEN:
        if (breaker->probe_in_flight)
          break;
        breaker->probe_in_flight = TRUE;
        permit->generation = breaker->generation;
        permit->probe = TRUE;
        return TRUE;
      case BS_CIRCUIT_OPEN:
      default:
        break;
    }
  if (retry_after_ms != NULL)
    *retry_after_ms = wait_ms;
  return FALSE;
}

gboolean
bs_circuit_breaker_allow (BsCircuitBreaker *breaker, BsCircuitPermit *permit, guint *retry_after_ms)
{
  gboolean allowed;

  g_rec_mutex_lock (&breaker->lock);
  allowed = allow_locked (breaker, permit, retry_after_ms);
  g_rec_mutex_unlock (&breaker->lock);
  return allowed;
}

static void
record_locked (BsCircuitBreaker *breaker, const BsCircuitPermit *permit, gboolean success)
{
  if (permit->generation != breaker->generation)
    return; /* let through in an earlier state: says nothing about now */

  switch (breaker->state)
    {
      case BS_CIRCUIT_CLOSED:
        if (success)
          breaker->consecutive_failures = 0;
        else if (++breaker->consecutive_failures >= breaker->failure_threshold)
          change_state (breaker, BS_CIRCUIT_OPEN);
        break;
      case BS_CIRCUIT_HALF_OPEN:
        if (permit->probe)
          change_state (breaker, success ? BS_CIRCUIT_CLOSED : BS_CIRCUIT_OPEN);
        break;
      case BS_CIRCUIT_OPEN:
      default:
        break;
    }
}

void
bs_circuit_breaker_record (BsCircuitBreaker *breaker, const BsCircuitPermit *permit,
                           gboolean success)
{
  g_rec_mutex_lock (&breaker->lock);
  record_locked (breaker, permit, success);
  g_rec_mutex_unlock (&breaker->lock);
}

void
bs_circuit_breaker_release (BsCircuitBreaker *breaker, const BsCircuitPermit *permit)
{
  g_rec_mutex_lock (&breaker->lock);
  if (permit->generation == breaker->generation && permit->probe
      && breaker->state == BS_CIRCUIT_HALF_OPEN)
    {
      breaker->probe_in_flight = FALSE;
      breaker->generation++; /* this permit, reported again, means nothing */
    }
  g_rec_mutex_unlock (&breaker->lock);
}

BsCircuitState
bs_circuit_breaker_get_state (BsCircuitBreaker *breaker)
{
  BsCircuitState state;

  g_rec_mutex_lock (&breaker->lock);
  state = breaker->state;
  g_rec_mutex_unlock (&breaker->lock);
  return state;
}

const char *
bs_circuit_state_to_string (BsCircuitState state)
{
  switch (state)
    {
      case BS_CIRCUIT_CLOSED:
        return "closed";
      case BS_CIRCUIT_OPEN:
        return "open";
      case BS_CIRCUIT_HALF_OPEN:
        return "half-open";
      default:
        return "unknown";
    }
}
