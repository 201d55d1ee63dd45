/* worker-queue-private.h: what worker-queue.c (reading, jobs) shares with
 * worker-queue-claim.c (retries, dead letters, stream statistics). */
#pragma once

#include "worker-queue.h"

G_BEGIN_DECLS

struct _WorkerQueue
{
  gint ref_count; /* one per command in flight, one per job, one for the owner */
  gboolean disposed;

  char *stream;
  char *dead_stream;
  char *name; /* the queue label */
  char *consumer;
  char *reader_name; /* the reader connection, in logs and redis_connected */
  guint concurrency;
  guint block_ms;
  guint claim_idle_ms;
  guint max_deliveries;
  char dead_maxlen[16];  /* XADD <stream>:dead MAXLEN this */
  const char *labels[2]; /* { name, NULL } for the metrics */

  BsRedis *reader;   /* owned; XGROUP CREATE and XREADGROUP only */
  BsRedis *commands; /* shared */
  BsService *service;
  WorkerMetrics *metrics;
  WorkerJobHandler handler;
  WorkerDeadHandler dead_handler;
  gpointer user_data;

  gboolean started;
  gboolean stopping;
  gint64 stop_started_us; /* monotonic time of worker_queue_stop() */
  gboolean group_ready;   /* created (or found) on the current reader connection */
  gboolean creating_group;
  gboolean reading;
  /* After a connect to another master than before (a failover through
   * Sentinel), the entries it holds as delivered to this consumer and not
   * acknowledged (a job whose XACK went to the master that died; a read lost
   * with its connection) are read again, from this id on (NULL: done): at
   * once, not after WORKER_CLAIM_IDLE_MS. On the same server, older pending
   * entries are left to the claimers and their idle time (a failed job
   * waits for its retry). */
  char *history_from;
  char *reader_address;       /* "host:port" of the reader's last connection */
  gboolean reading_history;   /* the read in flight is one of those */
  long long reader_client_id; /* CLIENT ID of the reader connection; 0 unknown */
  guint read_count;           /* COUNT of the read in flight: slots it may fill */
  guint claim_reserved;       /* slots an XCLAIM in flight may fill */
  guint retry_id;             /* after an unexpected error: try again later */
  guint claim_id;
  gboolean claiming;
  gboolean claim_first; /* stale entries wait for the slots of the read in flight */
  guint stats_id;
  gboolean stats_busy;
  gboolean consumers_busy; /* deleting consumers of stopped processes */

  GHashTable *jobs;    /* entry id → WorkerJob, in flight */
  GHashTable *reasons; /* entry id → last failure reason, bounded */
};

WorkerQueue *worker_queue_ref (WorkerQueue *queue);
void worker_queue_unref (WorkerQueue *queue);

/* Slots neither used by a job nor promised to a read or claim in flight. */
guint worker_queue_free_slots (WorkerQueue *queue);
/* Start a job for an entry read or claimed; takes @id and @fields. */
void worker_queue_start_job (WorkerQueue *queue, char *id, GHashTable *fields, guint deliveries);
/* Read again if there is room. */
void worker_queue_read_more (WorkerQueue *queue);

/* worker-queue-claim.c: timers for the claimer and the statistics. */
void worker_queue_claim_start (WorkerQueue *queue);
void worker_queue_claim_stop (WorkerQueue *queue);
void worker_queue_refresh_stats (WorkerQueue *queue);
/* XPENDING + XCLAIM now, unless a claim is already running. */
void worker_queue_claim_now (WorkerQueue *queue);
/* One entry of an extended XPENDING reply: its id (owned by the reply), the
 * ms since it was last delivered and how many times it was. FALSE when it is
 * not such an entry. */
gboolean worker_pending_entry (const redisReply *entry, const char **id, gint64 *idle_ms,
                               guint *deliveries);

/* worker-queue-reclaim.c: at stop, after the reader (CLIENT ID
 * @reader_client_id, 0 unknown) was closed with a read in flight: take back
 * and process what Redis had handed to it. Holds the service meanwhile. */
void worker_queue_reclaim_own (WorkerQueue *queue, long long reader_client_id);

/* A structured log record with QUEUE and JOB_ID (may be NULL) fields. */
void worker_queue_log (WorkerQueue *queue, GLogLevelFlags level, const char *job_id,
                       const char *format, ...) G_GNUC_PRINTF (4, 5);
/* The same, about a stream entry outside a job: a span of its own in the
 * trace of the entry's traceparent field (@fields may be NULL: a new trace). */
void worker_queue_log_entry (WorkerQueue *queue, GLogLevelFlags level, const char *job_id,
                             GHashTable *fields, const char *format, ...) G_GNUC_PRINTF (5, 6);

G_END_DECLS
