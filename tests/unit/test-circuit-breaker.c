/* test-circuit-breaker.c: the closed → open → half-open state machine,
 * driven by a fake clock. */
#include "bs-circuit-breaker.h"
#include "bs-test.h"

#include <glib.h>

#define COOLDOWN_MS 1000
#define MS 1000 /* microseconds */

/* A fake monotonic clock and a record of every state change. */
typedef struct
{
  BsCircuitBreaker *breaker;
  gint64 now_us;
  GArray *changes;     /* BsCircuitState */
  guint n_wrong_state; /* callbacks where get_state() disagreed */
  guint n_wrong_breaker;
} Fixture;

static gint64
fake_clock (gpointer user_data)
{
  Fixture *fx = user_data;

  return fx->now_us;
}

static void
on_state (BsCircuitBreaker *breaker, BsCircuitState state, gpointer user_data)
{
  Fixture *fx = user_data;

  if (breaker != fx->breaker)
    fx->n_wrong_breaker++;
  if (bs_circuit_breaker_get_state (breaker) != state)
    fx->n_wrong_state++;
  g_array_append_val (fx->changes, state);
}

static void
fixture_init (Fixture *fx, guint threshold)
{
  fx->breaker = bs_circuit_breaker_new (threshold, COOLDOWN_MS);
  /* an arbitrary start: nothing may assume the clock starts at 0 */
  fx->now_us = G_GINT64_CONSTANT (5000000000);
  fx->changes = g_array_new (FALSE, FALSE, sizeof (BsCircuitState));
  bs_circuit_breaker_set_clock (fx->breaker, fake_clock, fx);
  bs_circuit_breaker_set_state_func (fx->breaker, on_state, fx);
}

static void
setup_threshold_3 (Fixture *fx, gconstpointer data)
{
  fixture_init (fx, 3);
}

static void
setup_threshold_1 (Fixture *fx, gconstpointer data)
{
  fixture_init (fx, 1);
}

static void
teardown (Fixture *fx, gconstpointer data)
{
  g_assert_cmpuint (fx->n_wrong_breaker, ==, 0);
  g_assert_cmpuint (fx->n_wrong_state, ==, 0);
  g_clear_pointer (&fx->breaker, bs_circuit_breaker_free);
  g_clear_pointer (&fx->changes, g_array_unref);
}

/* The state changes seen so far, as "open,half-open,…". */
static char *
changes_string (Fixture *fx)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < fx->changes->len; i++)
    {
      if (i > 0)
        g_string_append_c (s, ',');
      g_string_append (s,
                       bs_circuit_state_to_string (g_array_index (fx->changes, BsCircuitState, i)));
    }
  return g_string_free (s, FALSE);
}

#define assert_changes(fx, expected)                                                               \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree char *changes_ = changes_string (fx);                                               \
    g_assert_cmpstr (changes_, ==, (expected));                                                    \
  }                                                                                                \
  G_STMT_END

#define assert_state(fx, expected)                                                                 \
  g_assert_cmpstr (bs_circuit_state_to_string (bs_circuit_breaker_get_state ((fx)->breaker)), ==,  \
                   bs_circuit_state_to_string (expected))

/* allow() must let the call through; returns its permit. */
static BsCircuitPermit
allowed (Fixture *fx)
{
  BsCircuitPermit permit = { G_MAXUINT64, TRUE };
  guint retry_after_ms = 12345;

  if (!bs_circuit_breaker_allow (fx->breaker, &permit, &retry_after_ms))
    bs_test_fail ("allow() refused in state %s (retry after %u ms)",
                  bs_circuit_state_to_string (bs_circuit_breaker_get_state (fx->breaker)),
                  retry_after_ms);
  return permit;
}

/* allow() must refuse; returns its retry_after_ms. */
static guint
refused (Fixture *fx)
{
  BsCircuitPermit permit = { 0 };
  guint retry_after_ms = 0;

  if (bs_circuit_breaker_allow (fx->breaker, &permit, &retry_after_ms))
    {
      bs_test_fail ("allow() let a call through in state %s (probe %d)",
                    bs_circuit_state_to_string (bs_circuit_breaker_get_state (fx->breaker)),
                    permit.probe);
      /* do not leave a probe hanging for the rest of the test */
      bs_circuit_breaker_release (fx->breaker, &permit);
      return 0;
    }
  g_assert_cmpuint (retry_after_ms, >=, 1);
  return retry_after_ms;
}

static void
call (Fixture *fx, gboolean success)
{
  BsCircuitPermit permit = allowed (fx);

  bs_circuit_breaker_record (fx->breaker, &permit, success);
}

/* From closed, fail until open; the cooldown starts at fx->now_us. */
static void
trip (Fixture *fx, guint threshold)
{
  assert_state (fx, BS_CIRCUIT_CLOSED);
  for (guint i = 0; i < threshold; i++)
    call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);
}

/* From open, let the cooldown pass and take the probe permit. */
static BsCircuitPermit
take_probe (Fixture *fx)
{
  BsCircuitPermit probe;

  fx->now_us += COOLDOWN_MS * MS;
  probe = allowed (fx);
  g_assert_true (probe.probe);
  assert_state (fx, BS_CIRCUIT_HALF_OPEN);
  return probe;
}

static void
test_closed_successes (Fixture *fx, gconstpointer data)
{
  assert_state (fx, BS_CIRCUIT_CLOSED);
  for (int i = 0; i < 1000; i++)
    {
      BsCircuitPermit permit = allowed (fx);

      g_assert_false (permit.probe);
      bs_circuit_breaker_record (fx->breaker, &permit, TRUE);
      fx->now_us += 7 * MS;
    }
  assert_state (fx, BS_CIRCUIT_CLOSED);
  assert_changes (fx, "");
}

static void
test_closed_consecutive_failures (Fixture *fx, gconstpointer data)
{
  /* threshold - 1 failures, then a success: the count starts again */
  for (int round = 0; round < 5; round++)
    {
      call (fx, FALSE);
      call (fx, FALSE);
      assert_state (fx, BS_CIRCUIT_CLOSED);
      call (fx, TRUE);
    }
  assert_changes (fx, "");

  /* failures of calls running at the same time count too */
  {
    BsCircuitPermit a = allowed (fx);
    BsCircuitPermit b = allowed (fx);
    BsCircuitPermit c = allowed (fx);

    bs_circuit_breaker_record (fx->breaker, &a, FALSE);
    bs_circuit_breaker_record (fx->breaker, &b, FALSE);
    assert_state (fx, BS_CIRCUIT_CLOSED);
    bs_circuit_breaker_record (fx->breaker, &c, FALSE);
  }
  assert_state (fx, BS_CIRCUIT_OPEN);
  assert_changes (fx, "open");
}

/* release() in the closed state is neither a success nor a failure */
static void
test_closed_release (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit permit;

  call (fx, FALSE);
  call (fx, FALSE);
  permit = allowed (fx);
  bs_circuit_breaker_release (fx->breaker, &permit);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);
  assert_changes (fx, "open");
}

static void
test_open_refuses (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit permit = { 0 };
  gint64 opened = fx->now_us;

  trip (fx, 3);

  g_assert_cmpuint (refused (fx), ==, COOLDOWN_MS);
  fx->now_us = opened + 1; /* 999.999 ms left: rounded up */
  g_assert_cmpuint (refused (fx), ==, COOLDOWN_MS);
  fx->now_us = opened + 250 * MS;
  g_assert_cmpuint (refused (fx), ==, 750);
  fx->now_us = opened + 100 * MS + 100; /* 899.9 ms left */
  g_assert_cmpuint (refused (fx), ==, 900);
  fx->now_us = opened + 999 * MS;
  g_assert_cmpuint (refused (fx), ==, 1);
  fx->now_us = opened + COOLDOWN_MS * MS - 1;
  g_assert_cmpuint (refused (fx), ==, 1);
  /* retry_after_ms may be NULL */
  g_assert_false (bs_circuit_breaker_allow (fx->breaker, &permit, NULL));
  assert_state (fx, BS_CIRCUIT_OPEN);
  assert_changes (fx, "open");

  /* exactly at the end of the cooldown, one probe */
  fx->now_us = opened + COOLDOWN_MS * MS;
  permit = allowed (fx);
  g_assert_true (permit.probe);
  assert_changes (fx, "open,half-open");
}

/* Refused calls have no outcome: failures reported while open do not extend
 * the cooldown. */
static void
test_open_ignores_outcomes (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit late = allowed (fx);
  gint64 opened;

  call (fx, FALSE);
  call (fx, FALSE);
  opened = fx->now_us;
  call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);

  fx->now_us = opened + 600 * MS;
  bs_circuit_breaker_record (fx->breaker, &late, FALSE);
  g_assert_cmpuint (refused (fx), ==, 400);
  assert_changes (fx, "open");
}

static void
test_half_open_single_probe (Fixture *fx, gconstpointer data)
{
  trip (fx, 3);
  take_probe (fx);

  /* while the probe is in flight, everyone else is refused */
  for (int i = 0; i < 10; i++)
    {
      fx->now_us += 10 * COOLDOWN_MS * MS;
      refused (fx);
    }
  assert_state (fx, BS_CIRCUIT_HALF_OPEN);
  assert_changes (fx, "open,half-open");
}

static void
test_probe_success_closes (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit probe;

  trip (fx, 3);
  probe = take_probe (fx);
  bs_circuit_breaker_record (fx->breaker, &probe, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  assert_changes (fx, "open,half-open,closed");

  /* closed again: calls go through, and the failure count starts at 0 */
  for (int i = 0; i < 5; i++)
    g_assert_false (allowed (fx).probe);
  call (fx, FALSE);
  call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);
  assert_changes (fx, "open,half-open,closed,open");
}

static void
test_probe_failure_reopens (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit probe;
  gint64 reopened;

  trip (fx, 3);
  probe = take_probe (fx);
  fx->now_us += 300 * MS; /* the probe took a while */
  reopened = fx->now_us;
  bs_circuit_breaker_record (fx->breaker, &probe, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);
  assert_changes (fx, "open,half-open,open");

  /* a whole new cooldown, from when the probe failed */
  g_assert_cmpuint (refused (fx), ==, COOLDOWN_MS);
  fx->now_us = reopened + 400 * MS;
  g_assert_cmpuint (refused (fx), ==, 600);
  fx->now_us = reopened + COOLDOWN_MS * MS - 1;
  g_assert_cmpuint (refused (fx), ==, 1);
  fx->now_us = reopened + COOLDOWN_MS * MS;
  probe = allowed (fx);
  g_assert_true (probe.probe);
  refused (fx);
  bs_circuit_breaker_record (fx->breaker, &probe, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  assert_changes (fx, "open,half-open,open,half-open,closed");
}

static void
test_probe_release (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit first, second, third;

  trip (fx, 3);
  first = take_probe (fx);
  refused (fx);

  /* the probe was cancelled: the next call probes instead */
  bs_circuit_breaker_release (fx->breaker, &first);
  assert_state (fx, BS_CIRCUIT_HALF_OPEN);
  second = allowed (fx);
  g_assert_true (second.probe);
  refused (fx);

  bs_circuit_breaker_record (fx->breaker, &second, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);

  /* a release of the probe of an earlier half-open period is ignored */
  third = take_probe (fx);
  bs_circuit_breaker_release (fx->breaker, &second);
  refused (fx);
  bs_circuit_breaker_record (fx->breaker, &third, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  assert_changes (fx, "open,half-open,open,half-open,closed");
}

/* Outcomes of calls let through before the last state change say nothing
 * about the dependency now. */
static void
test_stale_outcomes (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit closed_a = allowed (fx);
  BsCircuitPermit closed_b = allowed (fx);
  BsCircuitPermit closed_c = allowed (fx);
  BsCircuitPermit probe, old_probe;

  trip (fx, 3);

  /* a late success from before it opened does not close it */
  bs_circuit_breaker_record (fx->breaker, &closed_a, TRUE);
  assert_state (fx, BS_CIRCUIT_OPEN);
  refused (fx);

  /* nor end the half-open state, nor free the probe's turn */
  probe = take_probe (fx);
  bs_circuit_breaker_record (fx->breaker, &closed_b, TRUE);
  assert_state (fx, BS_CIRCUIT_HALF_OPEN);
  refused (fx);
  bs_circuit_breaker_release (fx->breaker, &closed_b);
  refused (fx);
  bs_circuit_breaker_record (fx->breaker, &closed_c, FALSE);
  assert_state (fx, BS_CIRCUIT_HALF_OPEN);
  refused (fx);

  /* the probe fails; the next one succeeds */
  bs_circuit_breaker_record (fx->breaker, &probe, FALSE);
  old_probe = probe;
  probe = take_probe (fx);
  bs_circuit_breaker_record (fx->breaker, &old_probe, TRUE);
  assert_state (fx, BS_CIRCUIT_HALF_OPEN);
  bs_circuit_breaker_record (fx->breaker, &probe, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);

  /* closed again: late failures from earlier generations do not count */
  for (int i = 0; i < 5; i++)
    {
      bs_circuit_breaker_record (fx->breaker, &closed_a, FALSE);
      bs_circuit_breaker_record (fx->breaker, &old_probe, FALSE);
      bs_circuit_breaker_record (fx->breaker, &probe, FALSE);
    }
  assert_state (fx, BS_CIRCUIT_CLOSED);
  assert_changes (fx, "open,half-open,open,half-open,closed");
}

static void
test_threshold_one (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit probe;

  call (fx, TRUE);
  call (fx, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);
  g_assert_cmpuint (refused (fx), ==, COOLDOWN_MS);

  probe = take_probe (fx);
  bs_circuit_breaker_record (fx->breaker, &probe, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  call (fx, FALSE);
  assert_state (fx, BS_CIRCUIT_OPEN);
  assert_changes (fx, "open,half-open,closed,open");
}

/* The state changes reach the callback once each, in order, and none for
 * calls that do not change anything. */
static void
test_state_func (Fixture *fx, gconstpointer data)
{
  BsCircuitPermit probe;

  call (fx, TRUE);
  call (fx, FALSE);
  call (fx, FALSE);
  assert_changes (fx, "");
  call (fx, FALSE);
  assert_changes (fx, "open");
  for (int i = 0; i < 3; i++)
    refused (fx);
  assert_changes (fx, "open");

  probe = take_probe (fx);
  assert_changes (fx, "open,half-open");
  refused (fx);
  refused (fx);
  assert_changes (fx, "open,half-open");
  bs_circuit_breaker_release (fx->breaker, &probe);
  assert_changes (fx, "open,half-open");
  probe = allowed (fx);
  assert_changes (fx, "open,half-open");
  bs_circuit_breaker_record (fx->breaker, &probe, FALSE);
  assert_changes (fx, "open,half-open,open");

  probe = take_probe (fx);
  bs_circuit_breaker_record (fx->breaker, &probe, TRUE);
  assert_changes (fx, "open,half-open,open,half-open,closed");
  call (fx, TRUE);
  assert_changes (fx, "open,half-open,open,half-open,closed");

  /* without a callback, the machine works the same */
  bs_circuit_breaker_set_state_func (fx->breaker, NULL, NULL);
  trip (fx, 3);
  probe = take_probe (fx);
  bs_circuit_breaker_record (fx->breaker, &probe, TRUE);
  assert_state (fx, BS_CIRCUIT_CLOSED);
  assert_changes (fx, "open,half-open,open,half-open,closed");
}

/* Without a test clock, g_get_monotonic_time() drives the cooldown. */
static void
test_default_clock (void)
{
  g_autoptr (BsCircuitBreaker) breaker = bs_circuit_breaker_new (1, 60000);
  BsCircuitPermit permit = { 0 };
  guint retry_after_ms = 0;

  g_assert_true (bs_circuit_breaker_allow (breaker, &permit, &retry_after_ms));
  bs_circuit_breaker_record (breaker, &permit, FALSE);
  g_assert_cmpint (bs_circuit_breaker_get_state (breaker), ==, BS_CIRCUIT_OPEN);
  g_assert_false (bs_circuit_breaker_allow (breaker, &permit, &retry_after_ms));
  g_assert_cmpuint (retry_after_ms, >, 50000);
  g_assert_cmpuint (retry_after_ms, <=, 60000);

  /* set_clock (NULL) goes back to the monotonic clock */
  bs_circuit_breaker_set_clock (breaker, NULL, NULL);
  retry_after_ms = 0;
  g_assert_false (bs_circuit_breaker_allow (breaker, &permit, &retry_after_ms));
  g_assert_cmpuint (retry_after_ms, >, 50000);
  g_assert_cmpuint (retry_after_ms, <=, 60000);
}

static void
test_state_to_string (void)
{
  g_assert_cmpstr (bs_circuit_state_to_string (BS_CIRCUIT_CLOSED), ==, "closed");
  g_assert_cmpstr (bs_circuit_state_to_string (BS_CIRCUIT_OPEN), ==, "open");
  g_assert_cmpstr (bs_circuit_state_to_string (BS_CIRCUIT_HALF_OPEN), ==, "half-open");
  g_assert_nonnull (bs_circuit_state_to_string ((BsCircuitState) 42));
}

static void
test_free_null (void)
{
  bs_circuit_breaker_free (NULL);
}

#define add_test(path, setup, func) g_test_add (path, Fixture, NULL, setup, func, teardown)

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  add_test ("/bs/circuit-breaker/closed/successes", setup_threshold_3, test_closed_successes);
  add_test ("/bs/circuit-breaker/closed/consecutive-failures", setup_threshold_3,
            test_closed_consecutive_failures);
  add_test ("/bs/circuit-breaker/closed/release", setup_threshold_3, test_closed_release);
  add_test ("/bs/circuit-breaker/open/refuses", setup_threshold_3, test_open_refuses);
  add_test ("/bs/circuit-breaker/open/ignores-outcomes", setup_threshold_3,
            test_open_ignores_outcomes);
  add_test ("/bs/circuit-breaker/half-open/single-probe", setup_threshold_3,
            test_half_open_single_probe);
  add_test ("/bs/circuit-breaker/half-open/probe-success", setup_threshold_3,
            test_probe_success_closes);
  add_test ("/bs/circuit-breaker/half-open/probe-failure", setup_threshold_3,
            test_probe_failure_reopens);
  add_test ("/bs/circuit-breaker/half-open/release", setup_threshold_3, test_probe_release);
  add_test ("/bs/circuit-breaker/stale-outcomes", setup_threshold_3, test_stale_outcomes);
  add_test ("/bs/circuit-breaker/threshold-one", setup_threshold_1, test_threshold_one);
  add_test ("/bs/circuit-breaker/state-func", setup_threshold_3, test_state_func);
  g_test_add_func ("/bs/circuit-breaker/default-clock", test_default_clock);
  g_test_add_func ("/bs/circuit-breaker/state-to-string", test_state_to_string);
  g_test_add_func ("/bs/circuit-breaker/free-null", test_free_null);

  return g_test_run ();
}
