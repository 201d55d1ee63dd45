/* test-heap-trim.c: when bs_heap_trim_check trims the heap. */
#include "bs-heap-trim.h"

#include <glib.h>

#define SECOND G_USEC_PER_SEC

static void
test_small_peaks_never_trim (void)
{
  BsHeapTrim trim = { 0 };

  bs_heap_trim_note (&trim, BS_HEAP_TRIM_MIN_PEAK - 1);
  g_assert_false (bs_heap_trim_check (&trim, 0, 100 * SECOND));
  g_assert_cmpuint (trim.trims, ==, 0);
}

static void
test_trims_once_a_peak_has_passed (void)
{
  BsHeapTrim trim = { 0 };
  guint peak = BS_HEAP_TRIM_MIN_PEAK * 2;

  for (guint open = 1; open <= peak; open++)
    bs_heap_trim_note (&trim, open);
  g_assert_false (bs_heap_trim_check (&trim, peak, 1 * SECOND));         /* at the peak */
  g_assert_false (bs_heap_trim_check (&trim, peak / 4 + 1, 2 * SECOND)); /* not low enough */
  g_assert_true (bs_heap_trim_check (&trim, peak / 4, 3 * SECOND));
  g_assert_cmpuint (trim.trims, ==, 1);
  g_assert_cmpuint (trim.peak, ==, peak / 4);
  /* the peak starts again from what is open: no second trim until a new one */
  g_assert_false (bs_heap_trim_check (&trim, 0, 100 * SECOND));
  g_assert_cmpuint (trim.trims, ==, 1);
}

static void
test_the_timer_sees_a_peak_too (void)
{
  BsHeapTrim trim = { 0 };

  g_assert_false (bs_heap_trim_check (&trim, BS_HEAP_TRIM_MIN_PEAK, 1 * SECOND));
  g_assert_true (bs_heap_trim_check (&trim, 0, 2 * SECOND));
}

static void
test_a_stream_of_connections_trims_too (void)
{
  BsHeapTrim trim = { 0 };

  /* one connection at a time: never a peak, but many came and went */
  for (guint i = 0; i < BS_HEAP_TRIM_MIN_ACCEPTED - 1; i++)
    bs_heap_trim_note (&trim, 1);
  g_assert_false (bs_heap_trim_check (&trim, 0, 1 * SECOND));
  bs_heap_trim_note (&trim, 1);
  g_assert_false (bs_heap_trim_check (&trim, 1, 2 * SECOND)); /* one still open */
  g_assert_true (bs_heap_trim_check (&trim, 0, 3 * SECOND));
  g_assert_cmpuint (trim.accepted, ==, 0);
  /* counted again from zero */
  bs_heap_trim_note (&trim, 1);
  g_assert_false (bs_heap_trim_check (&trim, 0, 100 * SECOND));
  g_assert_cmpuint (trim.trims, ==, 1);
}

static void
test_at_most_one_trim_per_interval (void)
{
  BsHeapTrim trim = { 0 };
  gint64 now = 5 * SECOND;

  bs_heap_trim_note (&trim, BS_HEAP_TRIM_MIN_PEAK);
  g_assert_true (bs_heap_trim_check (&trim, 0, now));
  /* the load swings again at once: no trim until the interval has passed */
  bs_heap_trim_note (&trim, BS_HEAP_TRIM_MIN_PEAK);
  g_assert_false (bs_heap_trim_check (&trim, 0, now + BS_HEAP_TRIM_MIN_INTERVAL_US - 1));
  g_assert_true (bs_heap_trim_check (&trim, 0, now + BS_HEAP_TRIM_MIN_INTERVAL_US));
  g_assert_cmpuint (trim.trims, ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/heap-trim/small-peaks", test_small_peaks_never_trim);
  g_test_add_func ("/heap-trim/after-a-peak", test_trims_once_a_peak_has_passed);
  g_test_add_func ("/heap-trim/timer-peak", test_the_timer_sees_a_peak_too);
  g_test_add_func ("/heap-trim/stream", test_a_stream_of_connections_trims_too);
  g_test_add_func ("/heap-trim/interval", test_at_most_one_trim_per_interval);
  return g_test_run ();
}
