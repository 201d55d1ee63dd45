/* test-metrics.c: the Prometheus registry and the process collector. */
#include "bs-metrics.h"
#include "bs-process-metrics.h"
#include "bs-test.h"

#include <gio/gio.h>
#include <glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

typedef struct
{
  BsMetrics *metrics;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer user_data)
{
  f->metrics = bs_metrics_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer user_data)
{
  g_clear_pointer (&f->metrics, bs_metrics_free);
}

static char *
render (Fixture *f)
{
  char *text = bs_metrics_render (f->metrics);

  g_assert_nonnull (text);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  if (*text != '\0')
    g_assert_true (g_str_has_suffix (text, "\n"));
  return text;
}

/* TRUE when @text has the line @line exactly. */
static gboolean
has_line (const char *text, const char *line)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  return g_strv_contains ((const char *const *) lines, line);
}

static void
check_line (const char *text, const char *line)
{
  if (!has_line (text, line))
    bs_test_fail ("no line '%s' in:\n%s", line, text);
}

static guint
count_prefix (const char *text, const char *prefix)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    n += g_str_has_prefix (lines[i], prefix);
  return n;
}

/* The value of the series written exactly as @series ("name{a=\"b\"}"), or
 * NAN when it is missing. */
static double
series_value (const char *text, const char *series)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree char *prefix = g_strconcat (series, " ", NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_ascii_strtod (lines[i] + strlen (prefix), NULL);
  bs_test_fail ("no series %s in:\n%s", series, text);
  return NAN;
}

static void
test_counter (Fixture *f, gconstpointer user_data)
{
  BsMetricFamily *c = bs_metrics_counter (f->metrics, "jobs_total", "Jobs run.", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  g_assert_nonnull (c);
  before = render (f);
  check_line (before, "# HELP jobs_total Jobs run.");
  check_line (before, "# TYPE jobs_total counter");
  check_line (before, "jobs_total 0"); /* exists from the start */

  bs_metric_inc (c, NULL, 1);
  bs_metric_inc (c, NULL, 2.5);
  after = render (f);
  check_line (after, "jobs_total 3.5");
  g_assert_cmpuint (count_prefix (after, "jobs_total"), ==, 1);
}

static void
test_counter_labels (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "method", "status", NULL };
  const char *const get_200[] = { "GET", "200", NULL };
  const char *const post_201[] = { "POST", "201", NULL };
  BsMetricFamily *c = bs_metrics_counter (f->metrics, "http_requests_total", "Requests.", labels);
  g_autofree char *before = render (f);
  g_autofree char *after = NULL;

  /* no series until a label combination is used */
  check_line (before, "# TYPE http_requests_total counter");
  g_assert_cmpuint (count_prefix (before, "http_requests_total"), ==, 0);

  bs_metric_inc (c, get_200, 1);
  bs_metric_inc (c, get_200, 1);
  bs_metric_inc (c, post_201, 1);
  after = render (f);
  check_line (after, "http_requests_total{method=\"GET\",status=\"200\"} 2");
  check_line (after, "http_requests_total{method=\"POST\",status=\"201\"} 1");
  g_assert_cmpuint (count_prefix (after, "http_requests_total"), ==, 2);
}

static void
test_gauge (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "pool", NULL };
  const char *const a[] = { "a", NULL };
  BsMetricFamily *g = bs_metrics_gauge (f->metrics, "queue_depth", "Queued.", NULL);
  BsMetricFamily *gl = bs_metrics_gauge (f->metrics, "pool_size", "Pool size.", labels);
  BsMetricFamily *special = bs_metrics_gauge (f->metrics, "special", "Special values.", labels);
  const char *const inf[] = { "inf", NULL };
  const char *const ninf[] = { "ninf", NULL };
  const char *const nan[] = { "nan", NULL };
  const char *const big[] = { "big", NULL };
  const char *const frac[] = { "frac", NULL };
  g_autofree char *text = NULL;

  bs_metric_set (g, NULL, 10);
  bs_metric_inc (g, NULL, -3);
  bs_metric_set (gl, a, 4);
  bs_metric_inc (gl, a, 1);
  bs_metric_set (special, inf, INFINITY);
  bs_metric_set (special, ninf, -INFINITY);
  bs_metric_set (special, nan, NAN);
  bs_metric_set (special, big, 1e20);
  bs_metric_set (special, frac, 0.25);

  text = render (f);
  check_line (text, "# TYPE queue_depth gauge");
  check_line (text, "queue_depth 7");
  check_line (text, "pool_size{pool=\"a\"} 5");
  check_line (text, "special{pool=\"inf\"} +Inf");
  check_line (text, "special{pool=\"ninf\"} -Inf");
  check_line (text, "special{pool=\"nan\"} NaN");
  check_line (text, "special{pool=\"frac\"} 0.25");
  g_assert_cmpfloat (series_value (text, "special{pool=\"big\"}"), ==, 1e20);

  bs_metric_set (g, NULL, -2);
  g_free (text);
  text = render (f);
  check_line (text, "queue_depth -2");
}

static void
test_histogram (Fixture *f, gconstpointer user_data)
{
  /* bounds exact in binary, so that this test does not depend on how
   * they are printed (see /bs/metrics/histogram-le-format) */
  const double buckets[] = { 0.25, 0.5, 1 };
  BsMetricFamily *h = bs_metrics_histogram (f->metrics, "latency_seconds", "Latency.", NULL,
                                            buckets, G_N_ELEMENTS (buckets));
  const double observations[] = { 0.05, 0.25, 0.3, 0.5, 0.7, 5, 1 };
  g_autofree char *empty = render (f);
  g_autofree char *text = NULL;
  double sum = 0;
  double previous = 0;
  const char *const series[] = {
    "latency_seconds_bucket{le=\"0.25\"}",
    "latency_seconds_bucket{le=\"0.5\"}",
    "latency_seconds_bucket{le=\"1\"}",
    "latency_seconds_bucket{le=\"+Inf\"}",
  };
  const double expected[] = { 2, 4, 6, 7 };

  check_line (empty, "# TYPE latency_seconds histogram");
  check_line (empty, "latency_seconds_bucket{le=\"+Inf\"} 0");
  check_line (empty, "latency_seconds_count 0");
  check_line (empty, "latency_seconds_sum 0");

  for (gsize i = 0; i < G_N_ELEMENTS (observations); i++)
    {
      bs_metric_observe (h, NULL, observations[i]);
      sum += observations[i];
    }
  text = render (f);

  for (gsize i = 0; i < G_N_ELEMENTS (series); i++)
    {
      double v = series_value (text, series[i]);
      g_assert_cmpfloat (v, ==, expected[i]); /* upper bounds are inclusive */
      g_assert_cmpfloat (v, >=, previous);    /* cumulative */
      previous = v;
    }
  g_assert_cmpfloat (series_value (text, "latency_seconds_count"), ==,
                     series_value (text, "latency_seconds_bucket{le=\"+Inf\"}"));
  g_assert_cmpfloat_with_epsilon (series_value (text, "latency_seconds_sum"), sum, 1e-9);
  g_assert_cmpuint (count_prefix (text, "latency_seconds_bucket"), ==, 4);
}

static void
test_histogram_labels (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "route", NULL };
  const char *const x[] = { "/x", NULL };
  const char *const y[] = { "/y", NULL };
  const double buckets[] = { 1, 2 };
  BsMetricFamily *h = bs_metrics_histogram (f->metrics, "d_seconds", "D.", labels, buckets,
                                            G_N_ELEMENTS (buckets));
  g_autofree char *text = NULL;

  bs_metric_observe (h, x, 1.5);
  bs_metric_observe (h, x, 3);
  bs_metric_observe (h, y, 0.5);
  text = render (f);
  check_line (text, "d_seconds_bucket{route=\"/x\",le=\"1\"} 0");
  check_line (text, "d_seconds_bucket{route=\"/x\",le=\"2\"} 1");
  check_line (text, "d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2");
  check_line (text, "d_seconds_count{route=\"/x\"} 2");
  check_line (text, "d_seconds_sum{route=\"/x\"} 4.5");
  check_line (text, "d_seconds_bucket{route=\"/y\",le=\"1\"} 1");
  check_line (text, "d_seconds_count{route=\"/y\"} 1");
  check_line (text, "d_seconds_sum{route=\"/y\"} 0.5");
}

/* Bucket bounds are written the way people write them: a dashboard that
 * selects le="0.005" or le="0.1" must find the series. */
static void
test_histogram_le_format (Fixture *f, gconstpointer user_data)
{
  BsMetricFamily *h
      = bs_metrics_histogram (f->metrics, "req_seconds", "Requests.", NULL,
                              bs_metrics_latency_buckets, bs_metrics_n_latency_buckets);
  static const char *const expected[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
  };
  g_autofree char *text = NULL;

  g_assert_cmpuint (bs_metrics_n_latency_buckets, ==, G_N_ELEMENTS (expected));
  for (gsize i = 1; i < bs_metrics_n_latency_buckets; i++)
    g_assert_cmpfloat (bs_metrics_latency_buckets[i - 1], <, bs_metrics_latency_buckets[i]);

  bs_metric_observe (h, NULL, 0.003);
  text = render (f);
  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *prefix = g_strdup_printf ("req_seconds_bucket{le=\"%s\"} ", expected[i]);
      if (count_prefix (text, prefix) != 1)
        bs_test_fail ("no bucket le=\"%s\"", expected[i]);
    }
  g_assert_cmpuint (count_prefix (text, "req_seconds_bucket"), ==, G_N_ELEMENTS (expected) + 1);
}

static void
test_escaping (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "v", NULL };
  const char *const backslash[] = { "a\\b", NULL };
  const char *const quote[] = { "q\"q", NULL };
  const char *const newline[] = { "l\nl", NULL };
  const char *const all[] = { "\\\"\n", NULL };
  const char *const utf8[] = { "caf\xc3\xa9", NULL };
  BsMetricFamily *c = bs_metrics_counter (
      f->metrics, "esc_total", "Help with \\ backslash,\nnewline and \"quotes\".", labels);
  g_autofree char *text = NULL;

  bs_metric_inc (c, backslash, 1);
  bs_metric_inc (c, quote, 1);
  bs_metric_inc (c, newline, 1);
  bs_metric_inc (c, all, 1);
  bs_metric_inc (c, utf8, 1);
  text = render (f);

  /* HELP escapes backslash and newline only */
  check_line (text, "# HELP esc_total Help with \\\\ backslash,\\nnewline and \"quotes\".");
  check_line (text, "esc_total{v=\"a\\\\b\"} 1");
  check_line (text, "esc_total{v=\"q\\\"q\"} 1");
  check_line (text, "esc_total{v=\"l\\nl\"} 1");
  check_line (text, "esc_total{v=\"\\\\\\\"\\n\"} 1");
  check_line (text, "esc_total{v=\"caf\xc3\xa9\"} 1");
  /* every line is a comment or a sample: nothing was split */
  {
    g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++)
      if (lines[i][0] != '\0' && lines[i][0] != '#' && !g_str_has_prefix (lines[i], "esc_total"))
        bs_test_fail ("stray line '%s'", lines[i]);
  }
}

/* Different label values are different series, whatever bytes they hold. */
static void
test_label_values_distinct (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "a", "b", NULL };
  const char *const one[] = { "x\x1fy", "z", NULL };
  const char *const two[] = { "x", "y\x1fz", NULL };
  BsMetricFamily *c = bs_metrics_counter (f->metrics, "pairs_total", "Pairs.", labels);
  g_autofree char *text = NULL;

  bs_metric_inc (c, one, 1);
  bs_metric_inc (c, two, 5);
  text = render (f);
  check_line (text, "pairs_total{a=\"x\x1fy\",b=\"z\"} 1");
  check_line (text, "pairs_total{a=\"x\",b=\"y\x1fz\"} 5");
}

/* Series come out sorted by label values, whatever the insertion order,
 * so two renderings of the same state are byte-identical. */
static void
test_sorted (void)
{
  const char *const labels[] = { "k", NULL };
  const char *const order_a[] = { "c", "a", "d", "b" };
  const char *const order_b[] = { "b", "d", "a", "c" };
  g_autoptr (BsMetrics) m1 = bs_metrics_new ();
  g_autoptr (BsMetrics) m2 = bs_metrics_new ();
  BsMetricFamily *c1 = bs_metrics_counter (m1, "s_total", "S.", labels);
  BsMetricFamily *c2 = bs_metrics_counter (m2, "s_total", "S.", labels);
  g_autofree char *t1 = NULL;
  g_autofree char *t1_again = NULL;
  g_autofree char *t2 = NULL;
  const char *pa, *pb, *pc, *pd;

  for (guint i = 0; i < G_N_ELEMENTS (order_a); i++)
    {
      const char *va[] = { order_a[i], NULL };
      const char *vb[] = { order_b[i], NULL };
      bs_metric_inc (c1, va, 1);
      bs_metric_inc (c2, vb, 1);
    }
  t1 = bs_metrics_render (m1);
  t1_again = bs_metrics_render (m1);
  t2 = bs_metrics_render (m2);
  g_assert_cmpstr (t1, ==, t1_again);
  g_assert_cmpstr (t1, ==, t2);

  pa = strstr (t1, "s_total{k=\"a\"}");
  pb = strstr (t1, "s_total{k=\"b\"}");
  pc = strstr (t1, "s_total{k=\"c\"}");
  pd = strstr (t1, "s_total{k=\"d\"}");
  g_assert_nonnull (pa);
  g_assert_nonnull (pd);
  g_assert_true (pa < pb && pb < pc && pc < pd);
}

/* Each family's HELP and TYPE appear once, right before its samples. */
static void
test_families (Fixture *f, gconstpointer user_data)
{
  const double b[] = { 1 };
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  const char *current = NULL;

  bs_metrics_counter (f->metrics, "one_total", "One.", NULL);
  bs_metrics_gauge (f->metrics, "two", "Two.", NULL);
  bs_metrics_histogram (f->metrics, "three_seconds", "Three.", NULL, b, 1);
  text = render (f);
  g_assert_cmpuint (count_prefix (text, "# HELP one_total "), ==, 1);
  g_assert_cmpuint (count_prefix (text, "# TYPE one_total "), ==, 1);
  g_assert_cmpuint (count_prefix (text, "# HELP two "), ==, 1);
  g_assert_cmpuint (count_prefix (text, "# HELP three_seconds "), ==, 1);

  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "# TYPE "))
        {
          g_auto (GStrv) parts = g_strsplit (lines[i], " ", -1);
          current = g_intern_string (parts[2]);
          g_assert_true (g_str_has_prefix (lines[i - 1], "# HELP "));
        }
      else if (lines[i][0] != '#' && lines[i][0] != '\0')
        {
          g_assert_nonnull (current);
          if (current != NULL && !g_str_has_prefix (lines[i], current))
            bs_test_fail ("sample '%s' under family %s", lines[i], current);
        }
    }
}

typedef struct
{
  BsMetricFamily *gauge;
  guint runs;
  guint destroyed;
} CollectorState;

static void
collector (BsMetrics *metrics, gpointer user_data)
{
  CollectorState *state = user_data;

  state->runs++;
  bs_metric_set (state->gauge, NULL, state->runs * 10);
}

static void
collector_destroy (gpointer user_data)
{
  CollectorState *state = user_data;

  state->destroyed++;
}

static void
test_collectors (void)
{
  BsMetrics *metrics = bs_metrics_new ();
  CollectorState state = { 0 };
  CollectorState plain = { 0 };
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;

  state.gauge = bs_metrics_gauge (metrics, "collected", "Collected.", NULL);
  plain.gauge = bs_metrics_gauge (metrics, "collected_plain", "Collected too.", NULL);
  bs_metrics_add_collector (metrics, collector, &state, collector_destroy);
  bs_metrics_add_collector (metrics, collector, &plain, NULL);
  g_assert_cmpuint (state.runs, ==, 0);

  first = bs_metrics_render (metrics);
  g_assert_cmpuint (state.runs, ==, 1);
  g_assert_cmpuint (plain.runs, ==, 1);
  check_line (first, "collected 10");
  second = bs_metrics_render (metrics);
  g_assert_cmpuint (state.runs, ==, 2);
  check_line (second, "collected 20");
  check_line (second, "collected_plain 20");

  g_assert_cmpuint (state.destroyed, ==, 0);
  bs_metrics_free (metrics);
  g_assert_cmpuint (state.destroyed, ==, 1);
  g_assert_cmpuint (plain.destroyed, ==, 0);
  bs_metrics_free (NULL); /* destructors accept NULL */
}

/* A wrong number of label values is a programmer error: a critical, and no
 * series is made up. */
static void
test_wrong_label_count (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "a", "b", NULL };
  const char *const one[] = { "x", NULL };
  BsMetricFamily *c = bs_metrics_counter (f->metrics, "w_total", "W.", labels);
  g_autofree char *text = NULL;

  g_test_expect_message ("bookstore", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  bs_metric_inc (c, one, 1);
  g_test_assert_expected_messages ();
  g_test_expect_message ("bookstore", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  bs_metric_inc (c, NULL, 1);
  g_test_assert_expected_messages ();

  text = render (f);
  g_assert_cmpuint (count_prefix (text, "w_total"), ==, 0);
}

/* ---- shards: one registry per event loop, summed at a scrape ---- */

static void
register_loop_families (BsMetrics *metrics, BsMetricFamily **c, BsMetricFamily **g,
                        BsMetricFamily **h)
{
  static const double buckets[] = { 0.1, 1.0 };

  *c = bs_metrics_counter (metrics, "req_total", "Requests.",
                           (const char *const[]){ "code", NULL });
  *g = bs_metrics_gauge (metrics, "open", "Open.", NULL);
  *h = bs_metrics_histogram (metrics, "dur_seconds", "Duration.", NULL, buckets, 2);
}

static void
test_shards_summed (Fixture *f, gconstpointer user_data)
{
  g_autoptr (BsMetrics) shard = bs_metrics_new ();
  BsMetricFamily *c0, *g0, *h0, *c1, *g1, *h1;
  g_autofree char *text = NULL;
  g_autofree char *alone = NULL;

  register_loop_families (f->metrics, &c0, &g0, &h0);
  register_loop_families (shard, &c1, &g1, &h1);
  bs_metrics_add_shard (f->metrics, shard);

  bs_metric_inc (c0, (const char *const[]){ "200", NULL }, 3);
  bs_metric_inc (c1, (const char *const[]){ "200", NULL }, 4);
  bs_metric_inc (c1, (const char *const[]){ "404", NULL }, 1); /* only in the shard */
  bs_metric_set (g0, NULL, 2);
  bs_metric_set (g1, NULL, 5);
  bs_metric_observe (h0, NULL, 0.0625);
  bs_metric_observe (h1, NULL, 0.5);
  bs_metric_observe (h1, NULL, 7);

  text = render (f);
  check_line (text, "req_total{code=\"200\"} 7");
  check_line (text, "req_total{code=\"404\"} 1");
  check_line (text, "open 7");
  check_line (text, "dur_seconds_bucket{le=\"0.1\"} 1");
  check_line (text, "dur_seconds_bucket{le=\"1\"} 2");
  check_line (text, "dur_seconds_bucket{le=\"+Inf\"} 3");
  check_line (text, "dur_seconds_count 3");
  check_line (text, "dur_seconds_sum 7.5625");
  g_assert_cmpuint (count_prefix (text, "# TYPE req_total"), ==, 1);

  bs_metrics_remove_shard (f->metrics, shard);
  alone = render (f);
  check_line (alone, "req_total{code=\"200\"} 3");
  g_assert_false (has_line (alone, "req_total{code=\"404\"} 1"));
  check_line (alone, "open 2");
}

typedef struct
{
  BsMetricFamily *counter;
  BsMetricFamily *histogram;
  guint n;
} Hammer;

static gpointer
hammer_thread (gpointer data)
{
  Hammer *hammer = data;

  for (guint i = 0; i < hammer->n; i++)
    {
      /* a new label set now and then: the shard's table grows meanwhile */
      g_autofree char *code = g_strdup_printf ("%u", i % 50 == 0 ? i : 200);
      bs_metric_inc (hammer->counter, (const char *const[]){ code, NULL }, 1);
      bs_metric_observe (hammer->histogram, NULL, 0.5);
    }
  return NULL;
}

static double
sum_of (const char *text, const char *prefix)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  double sum = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      sum += g_ascii_strtod (strrchr (lines[i], ' ') + 1, NULL);
  return sum;
}

/* Loops update their shards while another thread scrapes: every render is
 * whole (what a loop counted is never half there), and nothing is lost. */
static void
test_shards_concurrent (Fixture *f, gconstpointer user_data)
{
  const guint n = 20000;
  g_autoptr (BsMetrics) shard_a = bs_metrics_new ();
  g_autoptr (BsMetrics) shard_b = bs_metrics_new ();
  BsMetricFamily *c, *g, *h;
  Hammer a = { 0 }, b = { 0 };
  GThread *ta, *tb;
  g_autofree char *text = NULL;
  guint renders = 0;

  register_loop_families (f->metrics, &c, &g, &h);
  register_loop_families (shard_a, &a.counter, &g, &a.histogram);
  register_loop_families (shard_b, &b.counter, &g, &b.histogram);
  a.n = b.n = n;
  bs_metrics_add_shard (f->metrics, shard_a);
  bs_metrics_add_shard (f->metrics, shard_b);

  ta = g_thread_new ("a", hammer_thread, &a);
  tb = g_thread_new ("b", hammer_thread, &b);
  for (; renders < 200; renders++)
    {
      g_autofree char *partial = render (f);
      double count = sum_of (partial, "dur_seconds_count");
      double inf = sum_of (partial, "dur_seconds_bucket{le=\"+Inf\"}");
      g_assert_cmpfloat (count, ==, inf);
      g_assert_cmpfloat (count, <=, 2.0 * n);
    }
  g_thread_join (ta);
  g_thread_join (tb);

  text = render (f);
  g_assert_cmpfloat (sum_of (text, "req_total{"), ==, 2.0 * n);
  g_assert_cmpfloat (sum_of (text, "dur_seconds_count"), ==, 2.0 * n);
  bs_metrics_remove_shard (f->metrics, shard_a);
  bs_metrics_remove_shard (f->metrics, shard_b);
}

/* ---- process metrics ---- */

static void
test_process (Fixture *f, gconstpointer user_data)
{
  g_autofree char *text = NULL;
  double now = (double) g_get_real_time () / G_USEC_PER_SEC;
  double start;

  bs_process_metrics_register (f->metrics);
  text = render (f);

  check_line (text, "# TYPE process_cpu_seconds_total counter");
  check_line (text, "# TYPE process_resident_memory_bytes gauge");
  check_line (text, "# TYPE process_virtual_memory_bytes gauge");
  check_line (text, "# TYPE process_open_fds gauge");
  check_line (text, "# TYPE process_max_fds gauge");
  check_line (text, "# TYPE process_start_time_seconds gauge");

  g_assert_cmpfloat (series_value (text, "process_resident_memory_bytes"), >, 1024 * 1024);
  g_assert_cmpfloat (series_value (text, "process_virtual_memory_bytes"), >=,
                     series_value (text, "process_resident_memory_bytes"));
  g_assert_cmpfloat (series_value (text, "process_open_fds"), >=, 3); /* stdio at least */
  g_assert_cmpfloat (series_value (text, "process_max_fds"), >=,
                     series_value (text, "process_open_fds"));
  g_assert_cmpfloat (series_value (text, "process_cpu_seconds_total"), >=, 0);

  start = series_value (text, "process_start_time_seconds");
  g_assert_cmpfloat (start, <=, now + 5);
  g_assert_cmpfloat (start, >, now - 3600); /* this test process is young */
}

/* process_open_fds follows the descriptors we open. */
static void
test_process_fds (Fixture *f, gconstpointer user_data)
{
  int fds[2];
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *closed = NULL;

  bs_process_metrics_register (f->metrics);
  before = render (f);
  g_assert_no_errno (pipe (fds));
  after = render (f);
  close (fds[0]);
  close (fds[1]);
  closed = render (f);
  g_assert_cmpfloat (series_value (after, "process_open_fds"), ==,
                     series_value (before, "process_open_fds") + 2);
  g_assert_cmpfloat (series_value (closed, "process_open_fds"), ==,
                     series_value (before, "process_open_fds"));
}

/* ---- promtool ---- */

static void
promtool_check (const char *text)
{
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (promtool == NULL)
    {
      g_test_skip ("promtool not installed");
      return;
    }
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                               | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                           &error, promtool, "check", "metrics", NULL);
  g_assert_no_error (error);
  if (proc == NULL)
    return;
  g_subprocess_communicate_utf8 (proc, text, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    bs_test_fail ("promtool check metrics failed (status %d):\n%s%s\non:\n%s",
                  g_subprocess_get_exit_status (proc), out != NULL ? out : "",
                  err != NULL ? err : "", text);
  else if ((out != NULL && *out != '\0') || (err != NULL && *err != '\0'))
    g_test_message ("promtool: %s%s", out != NULL ? out : "", err != NULL ? err : "");
}

static void
test_promtool (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "method", "route", NULL };
  const char *const v1[] = { "GET", "/v1/books/{id}", NULL };
  const char *const v2[] = { "POST", "a\\b\"c\nx", NULL };
  BsMetricFamily *c = bs_metrics_counter (f->metrics, "bs_http_requests_total",
                                          "HTTP requests, with \\ and\nnewline.", labels);
  BsMetricFamily *g = bs_metrics_gauge (f->metrics, "bs_db_connections", "DB connections.", NULL);
  BsMetricFamily *h
      = bs_metrics_histogram (f->metrics, "bs_http_request_duration_seconds", "Request duration.",
                              labels, bs_metrics_latency_buckets, bs_metrics_n_latency_buckets);
  g_autofree char *text = NULL;

  bs_metric_inc (c, v1, 3);
  bs_metric_inc (c, v2, 1);
  bs_metric_set (g, NULL, 4);
  bs_metric_observe (h, v1, 0.0042);
  bs_metric_observe (h, v1, 0.3);
  bs_metric_observe (h, v2, 12);
  bs_process_metrics_register (f->metrics);
  text = render (f);
  promtool_check (text);
}

static void
test_promtool_empty (Fixture *f, gconstpointer user_data)
{
  g_autofree char *text = render (f);

  g_assert_cmpstr (text, ==, "");
  promtool_check (text);
}

/* bs_metric_init exports a series at zero before anything happened to it,
 * and leaves a series that exists as it is. */
static void
test_init (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "class", NULL };
  const char *const ok[] = { "2xx", NULL };
  const char *const failed[] = { "5xx", NULL };
  const double buckets[] = { 1 };
  BsMetricFamily *c = bs_metrics_counter (f->metrics, "req_total", "R.", labels);
  BsMetricFamily *g = bs_metrics_gauge (f->metrics, "depth", "D.", labels);
  BsMetricFamily *h = bs_metrics_histogram (f->metrics, "d_seconds", "D.", labels, buckets,
                                            G_N_ELEMENTS (buckets));
  g_autofree char *text = NULL;

  bs_metric_inc (c, ok, 2);
  bs_metric_set (g, ok, 7);
  bs_metric_observe (h, ok, 0.5);
  bs_metric_init (c, ok);
  bs_metric_init (c, failed);
  bs_metric_init (c, failed);
  bs_metric_init (g, ok);
  bs_metric_init (g, failed);
  bs_metric_init (h, ok);
  bs_metric_init (h, failed);
  text = render (f);
  check_line (text, "req_total{class=\"2xx\"} 2");
  check_line (text, "req_total{class=\"5xx\"} 0");
  g_assert_cmpuint (count_prefix (text, "req_total"), ==, 2);
  check_line (text, "depth{class=\"2xx\"} 7");
  check_line (text, "depth{class=\"5xx\"} 0");
  check_line (text, "d_seconds_count{class=\"2xx\"} 1");
  check_line (text, "d_seconds_bucket{class=\"5xx\",le=\"1\"} 0");
  check_line (text, "d_seconds_bucket{class=\"5xx\",le=\"+Inf\"} 0");
  check_line (text, "d_seconds_sum{class=\"5xx\"} 0");
  check_line (text, "d_seconds_count{class=\"5xx\"} 0");
  promtool_check (text);
}

/* A series removed is no longer rendered; the others stay; it can come back. */
static void
test_remove (Fixture *f, gconstpointer user_data)
{
  const char *const labels[] = { "stream", "group", NULL };
  const char *const a[] = { "s", "a", NULL };
  const char *const b[] = { "s", "b", NULL };
  BsMetricFamily *g = bs_metrics_gauge (f->metrics, "group_lag", "Lag.", labels);
  g_autofree char *both = NULL;
  g_autofree char *one = NULL;
  g_autofree char *again = NULL;

  bs_metric_set (g, a, 3);
  bs_metric_set (g, b, 4);
  both = render (f);
  g_assert_cmpuint (count_prefix (both, "group_lag{"), ==, 2);
  bs_metric_remove (g, a);
  bs_metric_remove (g, a); /* gone already: nothing happens */
  one = render (f);
  g_assert_false (has_line (one, "group_lag{stream=\"s\",group=\"a\"} 3"));
  check_line (one, "group_lag{stream=\"s\",group=\"b\"} 4");
  bs_metric_set (g, a, 5);
  again = render (f);
  check_line (again, "group_lag{stream=\"s\",group=\"a\"} 5");
}

/* OpenMetrics: counters' families without _total, samples with it; the
 * newest exemplar per bucket, from whichever shard saw it; "# EOF". */
static void
test_openmetrics (Fixture *f, gconstpointer user_data)
{
  static const double buckets[] = { 0.1, 1.0 };
  BsMetrics *shard = bs_metrics_new ();
  BsMetricFamily *requests = bs_metrics_counter (f->metrics, "x_requests_total", "Requests.", NULL);
  BsMetricFamily *plain = bs_metrics_counter (f->metrics, "x_plain", "No suffix.", NULL);
  BsMetricFamily *latency
      = bs_metrics_histogram (f->metrics, "x_seconds", "Latency.", NULL, buckets, 2);
  BsMetricFamily *shard_latency
      = bs_metrics_histogram (shard, "x_seconds", "Latency.", NULL, buckets, 2);
  g_autofree char *text = NULL;
  g_autofree char *om = NULL;

  bs_metrics_add_shard (f->metrics, shard);
  bs_metric_inc (requests, NULL, 3);
  bs_metric_inc (plain, NULL, 1);
  bs_metric_observe_exemplar (latency, NULL, 0.05, "aaaa0000000000000000000000000001");
  bs_metric_observe_exemplar (latency, NULL, 0.5, NULL); /* no trace: counted, no exemplar */
  g_usleep (2000);
  bs_metric_observe_exemplar (shard_latency, NULL, 0.07, "bbbb0000000000000000000000000002");
  bs_metric_observe_exemplar (shard_latency, NULL, 5.0, "cccc0000000000000000000000000003");

  text = bs_metrics_render (f->metrics);
  check_line (text, "x_requests_total 3");
  check_line (text, "x_seconds_bucket{le=\"0.1\"} 2");
  if (strstr (text, "# {") != NULL || strstr (text, "# EOF") != NULL)
    bs_test_fail ("exemplars or EOF in the classic format:\n%s", text);

  om = bs_metrics_render_format (f->metrics, BS_METRICS_FORMAT_OPENMETRICS);
  check_line (om, "# TYPE x_requests counter");
  check_line (om, "x_requests_total 3");
  check_line (om, "# TYPE x_plain counter");
  check_line (om, "x_plain_total 1");
  check_line (om, "x_seconds_count 4");
  g_assert_true (g_str_has_suffix (om, "\n# EOF\n"));
  /* 0.1: the shard's newer 0.07; 1: none (0.5 had no trace); +Inf: 5 */
  if (strstr (om,
              "x_seconds_bucket{le=\"0.1\"} 2 # {trace_id=\"bbbb0000000000000000000000000002\"} "
              "0.07 ")
      == NULL)
    bs_test_fail ("no newest exemplar on le=0.1:\n%s", om);
  check_line (om, "x_seconds_bucket{le=\"1\"} 3");
  if (strstr (
          om,
          "x_seconds_bucket{le=\"+Inf\"} 4 # {trace_id=\"cccc0000000000000000000000000003\"} 5 ")
      == NULL)
    bs_test_fail ("no exemplar on +Inf:\n%s", om);
  bs_metrics_remove_shard (f->metrics, shard);
  bs_metrics_free (shard);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/bs/metrics/counter", test_counter);
  ADD ("/bs/metrics/counter-labels", test_counter_labels);
  ADD ("/bs/metrics/gauge", test_gauge);
  ADD ("/bs/metrics/histogram", test_histogram);
  ADD ("/bs/metrics/histogram-labels", test_histogram_labels);
  ADD ("/bs/metrics/histogram-le-format", test_histogram_le_format);
  ADD ("/bs/metrics/escaping", test_escaping);
  ADD ("/bs/metrics/label-values-distinct", test_label_values_distinct);
  ADD ("/bs/metrics/families", test_families);
  ADD ("/bs/metrics/wrong-label-count", test_wrong_label_count);
  ADD ("/bs/metrics/process", test_process);
  ADD ("/bs/metrics/process-fds", test_process_fds);
  ADD ("/bs/metrics/promtool", test_promtool);
  ADD ("/bs/metrics/promtool-empty", test_promtool_empty);
  ADD ("/bs/metrics/init", test_init);
  ADD ("/bs/metrics/remove", test_remove);
  ADD ("/bs/metrics/shards-summed", test_shards_summed);
  ADD ("/bs/metrics/shards-concurrent", test_shards_concurrent);
  ADD ("/bs/metrics/openmetrics", test_openmetrics);
#undef ADD
  g_test_add_func ("/bs/metrics/sorted", test_sorted);
  g_test_add_func ("/bs/metrics/collectors", test_collectors);

  return g_test_run ();
}
