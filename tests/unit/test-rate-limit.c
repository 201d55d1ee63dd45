/* test-rate-limit.c: the burst, then one write per 1/rate s; exact refill
 * with no float; Retry-After; clients apart; the table bounded under
 * 100,000 addresses, the least recently seen evicted first. */
#include "bs-rate-limit.h"

#include "bs-config.h"
#include "bs-error.h"
#include "bs-test.h"

#include <string.h>

#define S 1000000 /* µs */

static void
test_burst_then_rate (void)
{
  g_autoptr (BsRateLimit) limit = bs_rate_limit_new (2, 5, 100);
  guint retry = 0;
  gint64 now = 10 * (gint64) S;

  for (guint i = 0; i < 5; i++)
    if (!bs_rate_limit_take (limit, "192.0.2.1", now, &retry))
      bs_test_fail ("write %u of the burst of 5 was refused", i + 1);
  g_assert_false (bs_rate_limit_take (limit, "192.0.2.1", now, &retry));
  g_assert_cmpuint (retry, ==, 1); /* 0.5 s to the next token: rounded up */
  /* 2 a second: one token after 0.5 s, not before */
  g_assert_false (bs_rate_limit_take (limit, "192.0.2.1", now + S / 2 - 1, NULL));
  g_assert_true (bs_rate_limit_take (limit, "192.0.2.1", now + S / 2, NULL));
  g_assert_false (bs_rate_limit_take (limit, "192.0.2.1", now + S / 2, NULL));
  /* a long pause fills the bucket to the burst, no more */
  now += 3600 * (gint64) S;
  for (guint i = 0; i < 5; i++)
    g_assert_true (bs_rate_limit_take (limit, "192.0.2.1", now, NULL));
  g_assert_false (bs_rate_limit_take (limit, "192.0.2.1", now, NULL));
}

static void
test_retry_after_slow_rate (void)
{
  g_autoptr (BsRateLimit) limit = bs_rate_limit_new (1, 1, 10);
  guint retry = 0;

  g_assert_true (bs_rate_limit_take (limit, "a", 0, NULL));
  g_assert_false (bs_rate_limit_take (limit, "a", 1, &retry));
  g_assert_cmpuint (retry, ==, 1);
  g_assert_true (bs_rate_limit_take (limit, "a", S, NULL));
}

static void
test_clients_apart (void)
{
  g_autoptr (BsRateLimit) limit = bs_rate_limit_new (1, 2, 10);

  g_assert_true (bs_rate_limit_take (limit, "a", 0, NULL));
  g_assert_true (bs_rate_limit_take (limit, "a", 0, NULL));
  g_assert_false (bs_rate_limit_take (limit, "a", 0, NULL));
  g_assert_true (bs_rate_limit_take (limit, "b", 0, NULL));
  g_assert_cmpuint (bs_rate_limit_get_n_clients (limit), ==, 2);
}

static void
test_bounded_table (void)
{
  g_autoptr (BsRateLimit) limit = bs_rate_limit_new (1, 1, 1000);
  char client[32];

  /* "a" spends its token, then keeps being seen while 100,000 others pass */
  g_assert_true (bs_rate_limit_take (limit, "a", 0, NULL));
  for (guint i = 0; i < 100000; i++)
    {
      g_snprintf (client, sizeof client, "10.%u.%u.%u", i >> 16, (i >> 8) & 0xff, i & 0xff);
      if (!bs_rate_limit_take (limit, client, 1, NULL))
        bs_test_fail ("new client %s refused", client);
      if (i % 500 == 0 && bs_rate_limit_take (limit, "a", 1, NULL))
        bs_test_fail ("the recently seen client was evicted (after %u others)", i);
      if (bs_rate_limit_get_n_clients (limit) > 1000)
        {
          bs_test_fail ("%u clients in a table of 1000", bs_rate_limit_get_n_clients (limit));
          return;
        }
    }
  g_assert_cmpuint (bs_rate_limit_get_n_clients (limit), ==, 1000);
  /* the oldest were evicted: the first new client starts afresh */
  g_assert_true (bs_rate_limit_take (limit, "10.0.0.0", 1, NULL));
}

static void
test_environment (void)
{
  g_autoptr (BsRateLimit) limit = NULL;
  g_autoptr (GError) error = NULL;

  g_unsetenv ("RATE_LIMIT_WRITES");
  g_unsetenv ("RATE_LIMIT_BURST");
  g_unsetenv ("RATE_LIMIT_CLIENTS");
  g_assert_true (bs_rate_limit_new_from_environment (&limit, &error));
  g_assert_null (limit); /* off by default */

  g_setenv ("RATE_LIMIT_WRITES", "0", TRUE);
  g_assert_true (bs_rate_limit_new_from_environment (&limit, &error));
  g_assert_null (limit);

  g_setenv ("RATE_LIMIT_WRITES", "20", TRUE);
  g_assert_true (bs_rate_limit_new_from_environment (&limit, &error));
  g_assert_nonnull (limit);
  g_assert_cmpuint (bs_rate_limit_get_per_second (limit), ==, 20);
  g_assert_cmpuint (bs_rate_limit_get_burst (limit), ==, 40);
  g_assert_cmpuint (bs_rate_limit_get_max_clients (limit), ==, BS_RATE_LIMIT_DEFAULT_CLIENTS);
  g_clear_pointer (&limit, bs_rate_limit_unref);

  g_setenv ("RATE_LIMIT_BURST", "7", TRUE);
  g_setenv ("RATE_LIMIT_CLIENTS", "50", TRUE);
  g_assert_true (bs_rate_limit_new_from_environment (&limit, &error));
  g_assert_cmpuint (bs_rate_limit_get_burst (limit), ==, 7);
  g_assert_cmpuint (bs_rate_limit_get_max_clients (limit), ==, 50);
  g_clear_pointer (&limit, bs_rate_limit_unref);

  g_setenv ("RATE_LIMIT_BURST", "0", TRUE);
  g_assert_false (bs_rate_limit_new_from_environment (&limit, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "RATE_LIMIT_BURST"));
  g_clear_error (&error);

  g_setenv ("RATE_LIMIT_WRITES", "fast", TRUE);
  g_assert_false (bs_rate_limit_new_from_environment (&limit, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "RATE_LIMIT_WRITES"));
  g_unsetenv ("RATE_LIMIT_WRITES");
  g_unsetenv ("RATE_LIMIT_BURST");
  g_unsetenv ("RATE_LIMIT_CLIENTS");
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/rate-limit/burst-then-rate", test_burst_then_rate);
  g_test_add_func ("/rate-limit/retry-after-slow-rate", test_retry_after_slow_rate);
  g_test_add_func ("/rate-limit/clients-apart", test_clients_apart);
  g_test_add_func ("/rate-limit/bounded-table", test_bounded_table);
  g_test_add_func ("/rate-limit/environment", test_environment);
  return g_test_run ();
}
