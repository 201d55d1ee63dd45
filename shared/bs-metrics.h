/* bs-metrics.h: a small Prometheus registry: counters, gauges, histograms. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BsMetrics BsMetrics;

/* Trace ids are 32 hex digits (W3C); OpenMetrics allows 128 characters of
 * exemplar labels. */
#define BS_METRICS_EXEMPLAR_ID_MAX 32
typedef struct _BsMetricFamily BsMetricFamily;

/* Called before each rendering, to refresh gauges that are read on demand.
 * Rendering may run on any thread: a collector must read what it reports
 * safely from there (atomics, or state that never changes). */
typedef void (*BsMetricsCollector) (BsMetrics *metrics, gpointer user_data);

BsMetrics *bs_metrics_new (void);
void bs_metrics_free (BsMetrics *metrics);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsMetrics, bs_metrics_free)

/* @label_names is NULL-terminated, or NULL for none. The registry owns the
 * family; the pointer stays valid until bs_metrics_free(). */
BsMetricFamily *bs_metrics_counter (BsMetrics *metrics, const char *name, const char *help,
                                    const char *const *label_names);
BsMetricFamily *bs_metrics_gauge (BsMetrics *metrics, const char *name, const char *help,
                                  const char *const *label_names);
/* @buckets: strictly increasing upper bounds, without +Inf. */
BsMetricFamily *bs_metrics_histogram (BsMetrics *metrics, const char *name, const char *help,
                                      const char *const *label_names, const double *buckets,
                                      gsize n_buckets);

/* @destroy (may be NULL) frees @user_data with the registry. */
void bs_metrics_add_collector (BsMetrics *metrics, BsMetricsCollector collector, gpointer user_data,
                               GDestroyNotify destroy);

/* Several event loops: each loop updates a registry of its own (a shard:
 * no lock is shared between loops), and the service's registry renders its
 * families summed with the shards' families of the same name. Add the shards
 * before serving and remove them after the loops have stopped; @shard must
 * stay alive while added. Every registry has a lock taken by each update and
 * by rendering, so a scrape on one loop reads the others safely. */
void bs_metrics_add_shard (BsMetrics *metrics, BsMetrics *shard);
void bs_metrics_remove_shard (BsMetrics *metrics, BsMetrics *shard);

/* @label_values: one per label name and a terminating NULL, or NULL when
 * the family has none. */
void bs_metric_inc (BsMetricFamily *family, const char *const *label_values, double by);
void bs_metric_set (BsMetricFamily *family, const char *const *label_values, double value);
void bs_metric_observe (BsMetricFamily *family, const char *const *label_values, double value);
/* As bs_metric_observe(), and @trace_id (NULL or "": none) becomes the
 * exemplar of the bucket @value falls in: its newest, with the time. They
 * appear in the OpenMetrics rendering only. */
void bs_metric_observe_exemplar (BsMetricFamily *family, const char *const *label_values,
                                 double value, const char *trace_id);
/* Export one series from the start, before anything happens to it: a
 * counter or gauge at 0, a histogram with no observations. A series that
 * exists already is left as it is. Queries over label values that have not
 * occurred yet (the 5xx of a healthy service) then give 0, not nothing, and
 * rate() sees the first increment. */
void bs_metric_init (BsMetricFamily *family, const char *const *label_values);
/* Forget one series of a family with labels (a thing that is gone, such as
 * a consumer group deleted); it is no longer rendered. */
void bs_metric_remove (BsMetricFamily *family, const char *const *label_values);

/* Prometheus text exposition format 0.0.4. */
char *bs_metrics_render (BsMetrics *metrics);

typedef enum
{
  BS_METRICS_FORMAT_TEXT,        /* Prometheus text 0.0.4 */
  BS_METRICS_FORMAT_OPENMETRICS, /* OpenMetrics 1.0.0, with exemplars and "# EOF" */
} BsMetricsFormat;
char *bs_metrics_render_format (BsMetrics *metrics, BsMetricsFormat format);

#define BS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define BS_METRICS_OPENMETRICS_CONTENT_TYPE                                                        \
  "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Default latency buckets, in seconds. */
extern const double bs_metrics_latency_buckets[];
extern const gsize bs_metrics_n_latency_buckets;

G_END_DECLS
