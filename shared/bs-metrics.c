/* bs-metrics.c: metric families, samples keyed by label values, text rendering. */
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

typedef struct
{
  char **label_values;    /* owned, NULL-terminated */
  double value;           /* counter or gauge */
  guint64 *bucket_counts; /* histogram: n_buckets + 1 (the last is +Inf) */
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
};

typedef struct
{
  BsMetricsCollector func;
  gpointer user_data;
  GDestroyNotify destroy;
} Collector;

struct _BsMetrics
{
  GPtrArray *families; /* BsMetricFamily, registration order */
  GArray *collectors;  /* Collector */
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

  metrics->families = g_ptr_array_new_with_free_func (family_free);
  metrics->collectors = g_array_new (FALSE, TRUE, sizeof (Collector));
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
  g_free (metrics);
}

/* The key of a sample: length-prefixed label values, so that no label value
 * can make two tuples collide. NULL when @label_values does not fit. */
static char *
sample_key (BsMetricFamily *family, const char *const *label_values)
{
  GString *key;

  if (family->n_labels == 0)
    return g_strdup ("");
  g_return_val_if_fail (label_values != NULL, NULL);
  g_return_val_if_fail (g_strv_length ((char **) label_values) == family->n_labels, NULL);
  key = g_string_new (NULL);
  for (guint i = 0; i < family->n_labels; i++)
    g_string_append_printf (key, "%zu:%s;", strlen (label_values[i]), label_values[i]);
  return g_string_free (key, FALSE);
}

static Sample *
family_sample (BsMetricFamily *family, const char *const *label_values)
{
  g_autofree char *key = sample_key (family, label_values);
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
  g_hash_table_insert (family->samples, g_steal_pointer (&key), sample);
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
  g_ptr_array_add (metrics->families, family);
  return family;
}

BsMetricFamily *
bs_metrics_counter (BsMetrics *metrics, const char *name, const char *help,
                    const char *const *label_names)
{
  BsMetricFamily *family = add_family (metrics, FAMILY_COUNTER, name, help, label_names);

  if (family->n_labels == 0)
    family_sample (family, NULL); /* a label-less counter exists from the start at 0 */
  return family;
}

BsMetricFamily *
bs_metrics_gauge (BsMetrics *metrics, const char *name, const char *help,
                  const char *const *label_names)
{
  BsMetricFamily *family = add_family (metrics, FAMILY_GAUGE, name, help, label_names);

  if (family->n_labels == 0)
    family_sample (family, NULL);
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
    family_sample (family, NULL);
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
bs_metric_inc (BsMetricFamily *family, const char *const *label_values, double by)
{
  Sample *sample;

  g_return_if_fail (family->type == FAMILY_COUNTER || family->type == FAMILY_GAUGE);
  sample = family_sample (family, label_values);
  if (sample != NULL)
    sample->value += by;
}

void
bs_metric_set (BsMetricFamily *family, const char *const *label_values, double value)
{
  Sample *sample;

  g_return_if_fail (family->type != FAMILY_HISTOGRAM);
  sample = family_sample (family, label_values);
  if (sample != NULL)
    sample->value = value;
}

void
bs_metric_observe (BsMetricFamily *family, const char *const *label_values, double value)
{
  Sample *sample;

  g_return_if_fail (family->type == FAMILY_HISTOGRAM);
  sample = family_sample (family, label_values);
  if (sample == NULL)
    return;
  for (gsize i = 0; i < family->n_buckets; i++)
    if (value <= family->buckets[i])
      sample->bucket_counts[i]++;
  sample->bucket_counts[family->n_buckets]++;
  sample->sum += value;
  sample->count++;
}

void
bs_metric_remove (BsMetricFamily *family, const char *const *label_values)
{
  g_autofree char *key = NULL;

  g_return_if_fail (family->n_labels > 0);
  key = sample_key (family, label_values);
  if (key != NULL)
    g_hash_table_remove (family->samples, key);
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

static void
render_family (GString *out, const BsMetricFamily *family)
{
  static const char *type_names[] = { "counter", "gauge", "histogram" };
  guint n_keys = 0;
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array (family->samples, &n_keys);

  g_string_append_printf (out, "# HELP %s ", family->name);
  append_escaped (out, family->help, FALSE);
  g_string_append_printf (out, "\n# TYPE %s %s\n", family->name, type_names[family->type]);

  qsort (keys, n_keys, sizeof (gpointer), compare_keys);
  for (guint k = 0; k < n_keys; k++)
    {
      const Sample *sample = g_hash_table_lookup (family->samples, keys[k]);

      if (family->type != FAMILY_HISTOGRAM)
        {
          append_series (out, family, "", sample, NULL, NULL);
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
          g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", sample->bucket_counts[i]);
        }
      append_series (out, family, "_sum", sample, NULL, NULL);
      append_number (out, sample->sum);
      g_string_append_c (out, '\n');
      append_series (out, family, "_count", sample, NULL, NULL);
      g_string_append_printf (out, "%" G_GUINT64_FORMAT "\n", sample->count);
    }
}

char *
bs_metrics_render (BsMetrics *metrics)
{
  GString *out = g_string_sized_new (4096);

  for (guint i = 0; i < metrics->collectors->len; i++)
    {
      const Collector *c = &g_array_index (metrics->collectors, Collector, i);
      c->func (metrics, c->user_data);
    }
  for (guint i = 0; i < metrics->families->len; i++)
    render_family (out, g_ptr_array_index (metrics->families, i));
  return g_string_free (out, FALSE);
}
