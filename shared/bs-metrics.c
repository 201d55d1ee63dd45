/* bs-metrics.c: metric families, samples keyed by label values, rendering
 * as Prometheus text or OpenMetrics (with exemplars on histogram buckets). */
#include "bs-metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum
{
  FAMILY_COUNTER,
  FAMILY_GAUGE,
  FAMILY_HISTOGRAM,
} FamilyType;

/* The latest observation of one bucket that came with a trace. */
typedef struct
{
  char trace_id[BS_METRICS_EXEMPLAR_ID_MAX + 1]; /* "" when none yet */
  double value;
  gint64 time_us; /* wall clock */
} Exemplar;

typedef struct
{
  char **label_values;    /* owned, NULL-terminated */
  double value;           /* counter or gauge */
  guint64 *bucket_counts; /* histogram: n_buckets + 1 (the last is +Inf) */
  Exemplar *exemplars;    /* histogram, once one came: n_buckets + 1 */
  double sum;
  guint64 count;
} Sample;

struct _BsMetricFamily
{
  FamilyType type;
  char *name;
  char *help;
  char **label_names;
  guint n_labels;
  double *buckets;
  gsize n_buckets;
  GHashTable *samples; /* joined label values → Sample */
  BsMetrics *owner;    /* whose lock guards the samples */
};

typedef struct
{
  BsMetricsCollector func;
  gpointer user_data;
  GDestroyNotify destroy;
} Collector;

struct _BsMetrics
{
  GMutex lock;         /* the samples of every family: updates take it, rendering too */
  GPtrArray *families; /* BsMetricFamily, registration order */
  GArray *collectors;  /* Collector */
  GPtrArray *shards;   /* BsMetrics, borrowed: summed into ours when rendering */
};

const double bs_metrics_latency_buckets[] = {
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
};
const gsize bs_metrics_n_latency_buckets = G_N_ELEMENTS (bs_metrics_latency_buckets);

static void
sample_free (gpointer data)
{
  Sample *sample = data;

  g_strfreev (sample->label_values);
  g_free (sample->bucket_counts);
  g_free (sample->exemplars);
  g_free (sample);
}

static void
family_free (gpointer data)
{
  BsMetricFamily *family = data;

  g_free (family->name);
  g_free (family->help);
  g_strfreev (family->label_names);
  g_free (family->buckets);
  g_hash_table_unref (family->samples);
  g_free (family);
}

BsMetrics *
bs_metrics_new (void)
{
  BsMetrics *metrics = g_new0 (BsMetrics, 1);

  g_mutex_init (&metrics->lock);
  metrics->families = g_ptr_array_new_with_free_func (family_free);
  metrics->collectors = g_array_new (FALSE, TRUE, sizeof (Collector));
  metrics->shards = g_ptr_array_new ();
  return metrics;
}

void
bs_metrics_free (BsMetrics *metrics)
{
  if (metrics == NULL)
    return;
  for (guint i = 0; i < metrics->collectors->len; i++)
    {
      Collector *c = &g_array_index (metrics->collectors, Collector, i);
      if (c->destroy != NULL)
        c->destroy (c->user_data);
    }
  g_ptr_array_unref (metrics->families);
  g_array_unref (metrics->collectors);
  g_ptr_array_unref (metrics->shards);
  g_mutex_clear (&metrics->lock);
  g_free (metrics);
}

/* The key of a sample: length-prefixed label values, so that no label value
 * can make two tuples collide. Written into @buf when it fits (no
 * allocation on the request path), else into *@heap. NULL when
 * @label_values does not fit the family. */
static const char *
sample_key (BsMetricFamily *family, const char *const *label_values, char *buf, gsize size,
            char **heap)
{
  GString *key;
  gsize used = 0;

  *heap = NULL;
  if (family->n_labels == 0)
    return "";
  g_return_val_if_fail (label_values != NULL, NULL);
  for (guint i = 0; i < family->n_labels; i++)
    {
      g_return_val_if_fail (label_values[i] != NULL, NULL);
      if (used < size)
        {
          int n = g_snprintf (buf + used, size - used, "%zu:%s;", strlen (label_values[i]),
                              label_values[i]);
          used += (gsize) n;
        }
    }
  g_return_val_if_fail (label_values[family->n_labels] == NULL, NULL);
  if (used < size)
    return buf;
  key = g_string_new (NULL);
  for (guint i = 0; i < family->n_labels; i++)
    g_string_append_printf (key, "%zu:%s;", strlen (label_values[i]), label_values[i]);
  *heap = g_string_free (key, FALSE);
  return *heap;
}

/* Called with the owner's lock held. */
static Sample *
family_sample (BsMetricFamily *family, const char *const *label_values)
{
  char buf[256];
  g_autofree char *heap = NULL;
  const char *key = sample_key (family, label_values, buf, sizeof buf, &heap);
  Sample *sample;

  if (key == NULL)
    return NULL;
  sample = g_hash_table_lookup (family->samples, key);
  if (sample != NULL)
    return sample;

  sample = g_new0 (Sample, 1);
  sample->label_values
      = family->n_labels > 0 ? g_strdupv ((char **) label_values) : g_new0 (char *, 1);
  if (family->type == FAMILY_HISTOGRAM)
    sample->bucket_counts = g_new0 (guint64, family->n_buckets + 1);
  g_hash_table_insert (family->samples, heap != NULL ? g_steal_pointer (&heap) : g_strdup (key),
                       sample);
  return sample;
}

static BsMetricFamily *
add_family (BsMetrics *metrics, FamilyType type, const char *name, const char *help,
            const char *const *label_names)
{
  BsMetricFamily *family = g_new0 (BsMetricFamily, 1);

  family->type = type;
  family->name = g_strdup (name);
  family->help = g_strdup (help);
  family->label_names
      = label_names != NULL ? g_strdupv ((char **) label_names) : g_new0 (char *, 1);
  family->n_labels = g_strv_length (family->label_names);
  family->samples = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, sample_free);
  family->owner = metrics;
  g_mutex_lock (&metrics->lock);
  g_ptr_array_add (metrics->families, family);
  g_mutex_unlock (&metrics->lock);
  return family;
}

BsMetricFamily *
bs_metrics_counter (BsMetrics *metrics, const char *name, const char *help,
                    const char *const *label_names)
{
  BsMetricFamily *family = add_family (metrics, FAMILY_COUNTER, name, help, label_names);

  if (family->n_labels == 0)
    bs_metric_inc (family, NULL, 0); /* a label-less counter exists from the start at 0 */
  return family;
}

BsMetricFamily *
bs_metrics_gauge (BsMetrics *metrics, const char *name, const char *help,
                  const char *const *label_names)
{
  BsMetricFamily *family = add_family (metrics, FAMILY_GAUGE, name, help, label_names);

  if (family->n_labels == 0)
    bs_metric_inc (family, NULL, 0);
  return family;
}

BsMetricFamily *
bs_metrics_histogram (BsMetrics *metrics, const char *name, const char *help,
                      const char *const *label_names, const double *buckets, gsize n_buckets)
{
  BsMetricFamily *family = add_family (metrics, FAMILY_HISTOGRAM, name, help, label_names);

  family->buckets = g_memdup2 (buckets, n_buckets * sizeof (double));
  family->n_buckets = n_buckets;
  if (family->n_labels == 0)
    bs_metric_init (family, NULL);
  return family;
}

void
bs_metrics_add_collector (BsMetrics *metrics, BsMetricsCollector collector, gpointer user_data,
                          GDestroyNotify destroy)
{
  Collector c = { collector, user_data, destroy };

  g_array_append_val (metrics->collectors, c);
}

void
bs_metrics_add_shard (BsMetrics *metrics, BsMetrics *shard)
{
  g_return_if_fail (metrics != shard);
  g_mutex_lock (&metrics->lock);
  g_ptr_array_add (metrics->shards, shard);
  g_mutex_unlock (&metrics->lock);
}

void
bs_metrics_remove_shard (BsMetrics *metrics, BsMetrics *shard)
{
  g_mutex_lock (&metrics->lock);
  g_ptr_array_remove (metrics->shards, shard);
  g_mutex_unlock (&metrics->lock);
}

void
bs_metric_inc (BsMetricFamily *family, const char *const *label_values, double by)
{
  Sample *sample;

  g_return_if_fail (family->type == FAMILY_COUNTER || family->type == FAMILY_GAUGE);
  g_mutex_lock (&family->owner->lock);
  sample = family_sample (family, label_values);
  if (sample != NULL)
    sample->value += by;
  g_mutex_unlock (&family->owner->lock);
}

void
bs_metric_set (BsMetricFamily *family, const char *const *label_values, double value)
{
  Sample *sample;

  g_return_if_fail (family->type != FAMILY_HISTOGRAM);
  g_mutex_lock (&family->owner->lock);
  sample = family_sample (family, label_values);
  if (sample != NULL)
    sample->value = value;
  g_mutex_unlock (&family->owner->lock);
}

void
bs_metric_observe (BsMetricFamily *family, const char *const *label_values, double value)
{
  Sample *sample;

  g_return_if_fail (family->type == FAMILY_HISTOGRAM);
  g_mutex_lock (&family->owner->lock);
  sample = family_sample (family, label_values);
  if (sample != NULL)
    {
      for (gsize i = 0; i < family->n_buckets; i++)
        if (value <= family->buckets[i])
          sample->bucket_counts[i]++;
      sample->bucket_counts[family->n_buckets]++;
      sample->sum += value;
      sample->count++;
    }
  g_mutex_unlock (&family->owner->lock);
}

void
bs_metric_observe_exemplar (BsMetricFamily *family, const char *const *label_values, double value,
                            const char *trace_id)
{
  Sample *sample;
  gsize bucket;

  g_return_if_fail (family->type == FAMILY_HISTOGRAM);
  if (trace_id == NULL || *trace_id == '\0')
    {
      bs_metric_observe (family, label_values, value);
      return;
    }
  for (bucket = 0; bucket < family->n_buckets; bucket++)
    if (value <= family->buckets[bucket])
      break;
  g_mutex_lock (&family->owner->lock);
  sample = family_sample (family, label_values);
  if (sample != NULL)
    {
      for (gsize i = bucket; i < family->n_buckets; i++)
        sample->bucket_counts[i]++;
      sample->bucket_counts[family->n_buckets]++;
      sample->sum += value;
      sample->count++;
      if (sample->exemplars == NULL)
        sample->exemplars = g_new0 (Exemplar, family->n_buckets + 1);
      g_strlcpy (sample->exemplars[bucket].trace_id, trace_id,
                 sizeof sample->exemplars[bucket].trace_id);
      sample->exemplars[bucket].value = value;
      sample->exemplars[bucket].time_us = g_get_real_time ();
    }
  g_mutex_unlock (&family->owner->lock);
}

void
bs_metric_init (BsMetricFamily *family, const char *const *label_values)
{
  g_mutex_lock (&family->owner->lock);
  family_sample (family, label_values);
  g_mutex_unlock (&family->owner->lock);
}

void
bs_metric_remove (BsMetricFamily *family, const char *const *label_values)
{
  char buf[256];
  g_autofree char *heap = NULL;
  const char *key;

  g_return_if_fail (family->n_labels > 0);
  key = sample_key (family, label_values, buf, sizeof buf, &heap);
  g_mutex_lock (&family->owner->lock);
  if (key != NULL)
    g_hash_table_remove (family->samples, key);
  g_mutex_unlock (&family->owner->lock);
}

/* The shortest decimal that reads back as @value: "0.1", not "0.10000000000000001". */
static void
format_shortest (char *buf, gsize size, double value)
{
  for (int precision = 15; precision <= 17; precision++)
    {
      char fmt[8];
      g_snprintf (fmt, sizeof fmt, "%%.%dg", precision);
      g_ascii_formatd (buf, size, fmt, value);
      if (g_ascii_strtod (buf, NULL) == value)
        return;
    }
}

static void
append_number (GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isinf (value))
    g_string_append (out, value > 0 ? "+Inf" : "-Inf");
  else if (isnan (value))
    g_string_append (out, "NaN");
  else if (value == floor (value) && fabs (value) < 1e15)
    g_string_append_printf (out, "%.0f", value);
  else
    {
      format_shortest (buf, sizeof buf, value);
      g_string_append (out, buf);
    }
}

static void
append_escaped (GString *out, const char *text, gboolean escape_quotes)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else if (*p == '"' && escape_quotes)
        g_string_append (out, "\\\"");
      else
        g_string_append_c (out, *p);
    }
}

/* name{a="x",b="y",extra} */
static void
append_series (GString *out, const BsMetricFamily *family, const char *suffix, const Sample *sample,
               const char *extra_name, const char *extra_value)
{
  gboolean any = FALSE;

  g_string_append (out, family->name);
  g_string_append (out, suffix);
  for (guint i = 0; i < family->n_labels; i++)
    {
      g_string_append_c (out, any ? ',' : '{');
      g_string_append_printf (out, "%s=\"", family->label_names[i]);
      append_escaped (out, sample->label_values[i], TRUE);
      g_string_append_c (out, '"');
      any = TRUE;
    }
  if (extra_name != NULL)
    {
      g_string_append_c (out, any ? ',' : '{');
      g_string_append_printf (out, "%s=\"%s\"", extra_name, extra_value);
      any = TRUE;
    }
  if (any)
    g_string_append_c (out, '}');
  g_string_append_c (out, ' ');
}

static gint
compare_keys (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* " # {trace_id="…"} value timestamp" after a bucket, in OpenMetrics. */
static void
append_exemplar (GString *out, const Exemplar *exemplar)
{
  char time_buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (out, " # {trace_id=\"%s\"} ", exemplar->trace_id);
  append_number (out, exemplar->value);
  g_ascii_formatd (time_buf, sizeof time_buf, "%.3f", (double) exemplar->time_us / G_USEC_PER_SEC);
  g_string_append_c (out, ' ');
  g_string_append (out, time_buf);
}

/* Renders @samples (joined label values → Sample) as @family. OpenMetrics
 * names a counter's family without "_total" and its samples with it, and
 * carries the buckets' exemplars. */
static void
render_family (GString *out, const BsMetricFamily *family, GHashTable *samples,
               BsMetricsFormat format)
{
  static const char *type_names[] = { "counter", "gauge", "histogram" };
  gboolean open_metrics = format == BS_METRICS_FORMAT_OPENMETRICS;
  guint n_keys = 0;
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array (samples, &n_keys);
  g_autofree char *family_name = g_strdup (family->name);
  const char *counter_suffix = "";

  if (open_metrics && family->type == FAMILY_COUNTER)
    {
      if (g_str_has_suffix (family_name, "_total"))
        family_name[strlen (family_name) - strlen ("_total")] = '\0';
      else
        counter_suffix = "_total";
    }
  g_string_append_printf (out, "# HELP %s ", family_name);
  append_escaped (out, family->help, FALSE);
  g_string_append_printf (out, "\n# TYPE %s %s\n", family_name, type_names[family->type]);

  qsort (keys, n_keys, sizeof (gpointer), compare_keys);
  for (guint k = 0; k < n_keys; k++)
    {
      const Sample *sample = g_hash_table_lookup (samples, keys[k]);

      if (family->type != FAMILY_HISTOGRAM)
        {
          append_series (out, family, counter_suffix, sample, NULL, NULL);
          append_number (out, sample->value);
          g_string_append_c (out, '\n');
          continue;
        }
      for (gsize i = 0; i <= family->n_buckets; i++)
        {
          char le[G_ASCII_DTOSTR_BUF_SIZE];

          if (i == family->n_buckets)
            g_strlcpy (le, "+Inf", sizeof le);
          else
            format_shortest (le, sizeof le, family->buckets[i]);
          append_series (out, family, "_bucket", sample, "le", le);
          g_string_append_printf (out, "%" G_GUINT64_FORMAT, sample->bucket_counts[i]);
          if (open_metrics && sample->exemplars != NULL && sample->exemplars[i].trace_id[0] != '\0')
            append_exemplar (out, &sample->exemplars[i]);
          g_string_append_c (out, '\n');
        }
      append_series (out, family, "_sum", sample, NULL, NULL);
      append_number (out, sample->sum);
      g_string_append_c (out, '\n');
      append_series (out, family, "_count", sample, NULL, NULL);
      g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", sample->count);
    }
}

static BsMetricFamily *
find_family (BsMetrics *metrics, const BsMetricFamily *like)
{
  for (guint i = 0; i < metrics->families->len; i++)
    {
      BsMetricFamily *family = g_ptr_array_index (metrics->families, i);
      if (family->type == like->type && family->n_buckets == like->n_buckets
          && g_str_equal (family->name, like->name))
        return family;
    }
  return NULL;
}

/* Adds @family's samples into @merged (key → a Sample of its own). */
static void
merge_samples (GHashTable *merged, const BsMetricFamily *family)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, family->samples);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const Sample *from = value;
      Sample *into = g_hash_table_lookup (merged, key);

      if (into == NULL)
        {
          into = g_new0 (Sample, 1);
          into->label_values = g_strdupv (from->label_values);
          if (family->type == FAMILY_HISTOGRAM)
            into->bucket_counts = g_new0 (guint64, family->n_buckets + 1);
          g_hash_table_insert (merged, g_strdup (key), into);
        }
      into->value += from->value;
      into->sum += from->sum;
      into->count += from->count;
      if (family->type == FAMILY_HISTOGRAM)
        for (gsize i = 0; i <= family->n_buckets; i++)
          into->bucket_counts[i] += from->bucket_counts[i];
      /* each bucket's newest exemplar, whichever loop saw it */
      if (from->exemplars != NULL)
        {
          if (into->exemplars == NULL)
            into->exemplars = g_new0 (Exemplar, family->n_buckets + 1);
          for (gsize i = 0; i <= family->n_buckets; i++)
            if (from->exemplars[i].time_us > into->exemplars[i].time_us)
              into->exemplars[i] = from->exemplars[i];
        }
    }
}

/* @family of @metrics, summed with the family of the same name in each
 * shard (counters, gauges and histograms alike: each loop's share). */
static void
render_family_with_shards (GString *out, BsMetrics *metrics, const BsMetricFamily *family,
                           BsMetricsFormat format)
{
  g_autoptr (GHashTable) merged = NULL;

  if (metrics->shards->len == 0)
    {
      render_family (out, family, family->samples, format);
      return;
    }
  merged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, sample_free);
  merge_samples (merged, family);
  for (guint s = 0; s < metrics->shards->len; s++)
    {
      BsMetricFamily *same = find_family (g_ptr_array_index (metrics->shards, s), family);
      if (same != NULL)
        merge_samples (merged, same);
    }
  render_family (out, family, merged, format);
}

static void
run_collectors (BsMetrics *metrics)
{
  for (guint i = 0; i < metrics->collectors->len; i++)
    {
      const Collector *c = &g_array_index (metrics->collectors, Collector, i);
      c->func (metrics, c->user_data);
    }
}

char *
bs_metrics_render (BsMetrics *metrics)
{
  return bs_metrics_render_format (metrics, BS_METRICS_FORMAT_TEXT);
}

char *
bs_metrics_render_format (BsMetrics *metrics, BsMetricsFormat format)
{
  GString *out = g_string_sized_new (4096);

  /* collectors set gauges, taking the locks themselves */
  run_collectors (metrics);
  for (guint s = 0; s < metrics->shards->len; s++)
    run_collectors (g_ptr_array_index (metrics->shards, s));

  /* ours first, then the shards': updates only ever take one of these */
  g_mutex_lock (&metrics->lock);
  for (guint s = 0; s < metrics->shards->len; s++)
    g_mutex_lock (&((BsMetrics *) g_ptr_array_index (metrics->shards, s))->lock);
  for (guint i = 0; i < metrics->families->len; i++)
    render_family_with_shards (out, metrics, g_ptr_array_index (metrics->families, i), format);
  for (guint s = metrics->shards->len; s > 0; s--)
    g_mutex_unlock (&((BsMetrics *) g_ptr_array_index (metrics->shards, s - 1))->lock);
  g_mutex_unlock (&metrics->lock);
  if (format == BS_METRICS_FORMAT_OPENMETRICS)
    g_string_append (out, "# EOF\n");
  return g_string_free (out, FALSE);
}
