/* worker-queue.h: one Redis Stream read as a job queue by the consumer group
 * bookstore-workers.
 *
 * New entries come from XREADGROUP ... BLOCK on a connection of the queue's
 * own (a blocking read would hold up every other command queued behind it);
 * acknowledgements and everything else go on the shared command connection.
 * At most `concurrency` jobs run at once. A job that fails stays pending and
 * is taken again (XPENDING ... IDLE + XCLAIM) after `claim_idle_ms`, by this
 * consumer or another: that is also how the jobs of a consumer that died get
 * done. After `max_deliveries` deliveries an entry is copied to
 * <stream>:dead (which keeps its last `dead_max_entries`) and acknowledged.
 * Consumers of the group that stopped processes of this host left are
 * deleted once idle past `claim_idle_ms` with nothing pending. On SIGTERM the queue stops reading
 * and holds the service until its jobs in flight are finished and acknowledged. */
#pragma once

#include "worker-metrics.h"

#include "bs-redis.h"
#include "bs-service.h"
#include "bs-trace.h"

G_BEGIN_DECLS

typedef struct _WorkerQueue WorkerQueue;
typedef struct _WorkerJob WorkerJob;

typedef struct
{
  const char *stream;     /* "bookstore:orders:events" */
  const char *queue;      /* the queue label: "process-order" */
  const char *consumer;   /* this worker's consumer name in the group */
  guint concurrency;      /* jobs in flight at most */
  guint block_ms;         /* XREADGROUP BLOCK */
  guint claim_idle_ms;    /* a pending entry idle this long is taken over */
  guint max_deliveries;   /* then it goes to <stream>:dead */
  guint dead_max_entries; /* which keeps its last this many (XADD MAXLEN) */
  BsRedisOptions *reader; /* connection settings of the queue's blocking reader */
} WorkerQueueOptions;

/* Start the job; finish it, now or later, with exactly one of
 * worker_job_complete/_skip/_reject/_fail. The handler owns the reference
 * it is given; each of those functions consumes it. */
typedef void (*WorkerJobHandler) (WorkerJob *job, gpointer user_data);

/* An entry was moved to <stream>:dead (after the copy, before the XACK):
 * @fields are the original fields. Call @done when finished with it; the
 * entry is then acknowledged. */
typedef void (*WorkerDeadDone) (gpointer done_data);
typedef void (*WorkerDeadHandler) (const char *id, GHashTable *fields, guint deliveries,
                                   const char *reason, WorkerDeadDone done, gpointer done_data,
                                   gpointer user_data);

/* @commands and @service outlive the queue. */
WorkerQueue *worker_queue_new (const WorkerQueueOptions *options, BsRedis *commands,
                               BsService *service, WorkerMetrics *metrics, WorkerJobHandler handler,
                               WorkerDeadHandler dead_handler, gpointer user_data);
/* Jobs still running are cancelled (worker_job_get_cancellable()); their
 * completions then do nothing. */
void worker_queue_free (WorkerQueue *queue);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WorkerQueue, worker_queue_free)

/* Connect, create the group, start reading and claiming. */
void worker_queue_start (WorkerQueue *queue);
/* Stop reading and claiming; jobs in flight finish. */
void worker_queue_stop (WorkerQueue *queue);

const char *worker_queue_get_name (WorkerQueue *queue);
gboolean worker_queue_is_connected (WorkerQueue *queue);
guint worker_queue_get_in_flight (WorkerQueue *queue);

/* ---- one job ------------------------------------------------------------ */

const char *worker_job_get_id (WorkerJob *job);
/* A field of the entry, or NULL. */
const char *worker_job_get_field (WorkerJob *job, const char *name);
/* A field holding a positive decimal integer (1..G_MAXINT64); FALSE when
 * missing or anything else. */
gboolean worker_job_get_positive_field (WorkerJob *job, const char *name, guint64 *out);
/* 1 on the first delivery. */
guint worker_job_get_deliveries (WorkerJob *job);
/* The consumer name, for messages the job publishes. */
const char *worker_job_get_consumer (WorkerJob *job);
/* The job's span (one per delivery): in the trace of the entry's
 * traceparent field, with its parent-id as parent, or a new trace when the
 * field is absent or malformed. Log it with the job's records. */
const BsTrace *worker_job_get_trace (WorkerJob *job);
/* The entry's tracestate field when valid and its traceparent was, else NULL. */
const char *worker_job_get_tracestate (WorkerJob *job);
/* Cancelled when the queue goes away with the job still running. */
GCancellable *worker_job_get_cancellable (WorkerJob *job);

/* Done: acknowledge. */
void worker_job_complete (WorkerJob *job);
/* Nothing to do (already done before): acknowledge, count as skipped. */
void worker_job_skip (WorkerJob *job, const char *why);
/* Refused for good: acknowledge, count as failed, never retried. */
void worker_job_reject (WorkerJob *job, WorkerFailureClass failure_class, const char *reason);
/* Failed for now: no acknowledgement; retried after the claim idle time,
 * dead-lettered after max_deliveries. */
void worker_job_fail (WorkerJob *job, WorkerFailureClass failure_class, const char *reason);

/* The failure class of a Redis command error: timeout or other. */
WorkerFailureClass worker_failure_class_for_redis (const GError *error);

G_END_DECLS
