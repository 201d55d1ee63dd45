/* worker-metrics.c: register the worker's families once, for all queues. */
#include "worker-metrics.h"

static const char *const class_names[WORKER_N_FAILURE_CLASSES] = {
  [WORKER_FAILURE_4XX] = "4xx",
  [WORKER_FAILURE_5XX] = "5xx",
  [WORKER_FAILURE_TIMEOUT] = "timeout",
  [WORKER_FAILURE_OTHER] = "other",
};

/* Seconds: simulated steps take milliseconds, HTTP retries seconds. */
static const double duration_buckets[]
    = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0 };

const char *
worker_failure_class_to_string (WorkerFailureClass failure_class)
{
  g_return_val_if_fail (failure_class < WORKER_N_FAILURE_CLASSES, "other");
  return class_names[failure_class];
}

void
worker_metrics_init (WorkerMetrics *metrics, BsMetrics *registry)
{
  static const char *const queue_label[] = { "queue", NULL };
  static const char *const failed_labels[] = { "queue", "class", NULL };
  static const char *const connection_label[] = { "connection", NULL };

  metrics->completed = bs_metrics_counter (registry, "worker_jobs_completed_total",
                                           "Jobs done and acknowledged", queue_label);
  metrics->failed = bs_metrics_counter (
      registry, "worker_jobs_failed_total",
      "Job attempts that failed, by class (4xx: refused, acknowledged, never retried; the others "
      "stay pending and are retried)",
      failed_labels);
  metrics->skipped = bs_metrics_counter (
      registry, "worker_jobs_skipped_total",
      "Jobs acknowledged without doing anything: their effect was already done", queue_label);
  metrics->duration = bs_metrics_histogram (registry, "worker_job_duration_seconds",
                                            "Time from taking a job to finishing it", queue_label,
                                            duration_buckets, G_N_ELEMENTS (duration_buckets));
  metrics->in_flight
      = bs_metrics_gauge (registry, "worker_jobs_in_flight", "Jobs being processed", queue_label);
  metrics->dead_lettered = bs_metrics_counter (
      registry, "worker_jobs_dead_lettered_total",
      "Jobs moved to <stream>:dead after WORKER_MAX_DELIVERIES deliveries", queue_label);
  metrics->claimed = bs_metrics_counter (
      registry, "worker_jobs_claimed_total",
      "Pending jobs taken over (XCLAIM) after WORKER_CLAIM_IDLE_MS: retries, or jobs of a "
      "consumer that died",
      queue_label);
  metrics->pending = bs_metrics_gauge (
      registry, "worker_stream_pending",
      "Entries delivered to the group and not yet acknowledged (XINFO GROUPS)", queue_label);
  metrics->lag
      = bs_metrics_gauge (registry, "worker_stream_lag",
                          "Entries not yet delivered to the group (XINFO GROUPS)", queue_label);
  metrics->redis_connected = bs_metrics_gauge (
      registry, "redis_connected", "1 while the Redis connection is up", connection_label);
  metrics->master_switches
      = bs_metrics_counter (registry, "redis_master_switches_total",
                            "Changes of Redis master the sentinels named", connection_label);
}

void
worker_metrics_add_queue (WorkerMetrics *metrics, const char *queue)
{
  const char *const labels[] = { queue, NULL };

  bs_metric_inc (metrics->completed, labels, 0);
  bs_metric_inc (metrics->skipped, labels, 0);
  bs_metric_inc (metrics->dead_lettered, labels, 0);
  bs_metric_inc (metrics->claimed, labels, 0);
  bs_metric_set (metrics->in_flight, labels, 0);
  bs_metric_set (metrics->pending, labels, 0);
  bs_metric_set (metrics->lag, labels, 0);
  bs_metric_init (metrics->duration, labels);
  for (guint i = 0; i < WORKER_N_FAILURE_CLASSES; i++)
    bs_metric_inc (metrics->failed, (const char *const[]){ queue, class_names[i], NULL }, 0);
}

void
worker_metrics_set_connected (WorkerMetrics *metrics, const char *connection, gboolean connected)
{
  bs_metric_set (metrics->redis_connected, (const char *const[]){ connection, NULL },
                 connected ? 1 : 0);
}
