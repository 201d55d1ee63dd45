/* worker-metrics.h: the worker's metric families, shared by its queues. */
#pragma once

#include "bs-metrics.h"

G_BEGIN_DECLS

/* Why a job failed: the class label of worker_jobs_failed_total. */
typedef enum
{
  WORKER_FAILURE_4XX,     /* the service refused it: never retried */
  WORKER_FAILURE_5XX,     /* the service failed */
  WORKER_FAILURE_TIMEOUT, /* no answer in time (HTTP or Redis) */
  WORKER_FAILURE_OTHER,   /* malformed job, connection refused, Redis error... */
  WORKER_N_FAILURE_CLASSES,
} WorkerFailureClass;

const char *worker_failure_class_to_string (WorkerFailureClass failure_class);

typedef struct
{
  BsMetricFamily *completed;       /* worker_jobs_completed_total{queue} */
  BsMetricFamily *failed;          /* worker_jobs_failed_total{queue,class} */
  BsMetricFamily *skipped;         /* worker_jobs_skipped_total{queue} */
  BsMetricFamily *duration;        /* worker_job_duration_seconds{queue} */
  BsMetricFamily *in_flight;       /* worker_jobs_in_flight{queue} */
  BsMetricFamily *dead_lettered;   /* worker_jobs_dead_lettered_total{queue} */
  BsMetricFamily *claimed;         /* worker_jobs_claimed_total{queue} */
  BsMetricFamily *pending;         /* worker_stream_pending{queue} */
  BsMetricFamily *lag;             /* worker_stream_lag{queue} */
  BsMetricFamily *redis_connected; /* redis_connected{connection} */
  BsMetricFamily *master_switches; /* redis_master_switches_total{connection} */
} WorkerMetrics;

void worker_metrics_init (WorkerMetrics *metrics, BsMetrics *registry);

/* Every series of @queue at 0, so dashboards see it before the first job. */
void worker_metrics_add_queue (WorkerMetrics *metrics, const char *queue);

void worker_metrics_set_connected (WorkerMetrics *metrics, const char *connection,
                                   gboolean connected);

G_END_DECLS
