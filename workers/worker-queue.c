/* worker-queue.c: the consumer group, the blocking reader, and the jobs.
 *
 * Lifetimes: every command the queue sends holds a reference to it, so a
 * reply arriving after worker_queue_free() (the command connection outlives
 * the queue) finds it disposed and does nothing. A job holds a reference to
 * its queue; the queue's table holds one to each job in flight. */
#include "worker-queue-private.h"

#include "worker-streams.h"

#include "bs-log.h"

#include <string.h>

#define RETRY_AFTER_ERROR_MS 1000
#define MAX_REMEMBERED_REASONS 1024

struct _WorkerJob
{
  gint ref_count;
  WorkerQueue *queue; /* strong */
  char *id;
  GHashTable *fields;
  guint deliveries;
  gint64 started_us;
  GCancellable *cancellable;
  gboolean in_table;  /* counted in flight, holding the service */
  gboolean finished;  /* one of the completions was called */
  BsTrace trace;      /* the job's span, in the trace of its traceparent field */
  gboolean continued; /* its traceparent was valid: its tracestate counts */
};

static void create_group (WorkerQueue *queue);

/* ---- logging ---------------------------------------------------------------- */

static void queue_logv (WorkerQueue *queue, GLogLevelFlags level, const char *job_id,
                        const BsTrace *trace, const char *format, va_list args)
    G_GNUC_PRINTF (5, 0);

static void
queue_logv (WorkerQueue *queue, GLogLevelFlags level, const char *job_id, const BsTrace *trace,
            const char *format, va_list args)
{
  g_autofree char *message = g_strdup_vprintf (format, args);
  GLogField fields[] = {
    { "PRIORITY",
      level & G_LOG_LEVEL_WARNING   ? "4"
      : level & G_LOG_LEVEL_MESSAGE ? "5"
                                    : "6",
      -1 },
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "QUEUE", queue->name, -1 },
    { "JOB_ID", job_id != NULL ? job_id : "-", -1 },
    BS_TRACE_LOG_FIELDS (trace),
    { "MESSAGE", message, -1 }, /* last: journald drops fields after it */
  };

  bs_log_fields (level, fields, G_N_ELEMENTS (fields));
}

void
worker_queue_log (WorkerQueue *queue, GLogLevelFlags level, const char *job_id, const char *format,
                  ...)
{
  va_list args;

  va_start (args, format);
  queue_logv (queue, level, job_id, NULL, format, args);
  va_end (args);
}

void
worker_queue_log_entry (WorkerQueue *queue, GLogLevelFlags level, const char *job_id,
                        GHashTable *fields, const char *format, ...)
{
  va_list args;
  BsTrace trace;

  bs_trace_start (&trace, fields != NULL ? g_hash_table_lookup (fields, "traceparent") : NULL);
  va_start (args, format);
  queue_logv (queue, level, job_id, &trace, format, args);
  va_end (args);
}

/* A record of the job, in its span. */
static void job_log (WorkerJob *job, GLogLevelFlags level, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
job_log (WorkerJob *job, GLogLevelFlags level, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  queue_logv (job->queue, level, job->id, &job->trace, format, args);
  va_end (args);
}

/* ---- the queue object --------------------------------------------------------- */

WorkerQueue *
worker_queue_ref (WorkerQueue *queue)
{
  g_atomic_int_inc (&queue->ref_count);
  return queue;
}

void
worker_queue_unref (WorkerQueue *queue)
{
  if (queue == NULL || !g_atomic_int_dec_and_test (&queue->ref_count))
    return;
  g_free (queue->stream);
  g_free (queue->dead_stream);
  g_free (queue->name);
  g_free (queue->consumer);
  g_free (queue->history_from);
  g_free (queue->reader_address);
  g_free (queue->reader_name);
  g_free (queue);
}

static void
client_id_known (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  WorkerQueue *queue = user_data;

  if (!queue->disposed && reply != NULL && reply->type == REDIS_REPLY_INTEGER)
    queue->reader_client_id = reply->integer;
  worker_queue_unref (queue);
}

static void
reader_state_changed (BsRedis *redis, gboolean connected, gpointer user_data)
{
  WorkerQueue *queue = user_data;

  worker_metrics_set_connected (queue->metrics, queue->reader_name, connected);
  queue->group_ready = FALSE;
  queue->reader_client_id = 0;
  if (connected)
    {
      g_autofree char *address = bs_redis_dup_address (redis);

      /* a new master after a failover: what this consumer was given on the
       * old one and did not acknowledge is ours to do */
      g_clear_pointer (&queue->history_from, g_free);
      if (queue->reader_address != NULL && g_strcmp0 (address, queue->reader_address) != 0)
        queue->history_from = g_strdup ("0");
      g_free (queue->reader_address);
      queue->reader_address = g_steal_pointer (&address);
      /* for the CLIENT KILL at stop; answered before the group is created */
      bs_redis_command (queue->reader, 0, client_id_known, worker_queue_ref (queue), "CLIENT", "ID",
                        NULL);
      create_group (queue);
    }
}

static void
job_unref (WorkerJob *job)
{
  if (g_atomic_int_dec_and_test (&job->ref_count))
    {
      g_clear_object (&job->cancellable);
      g_hash_table_unref (job->fields);
      worker_queue_unref (job->queue);
      g_free (job->id);
      g_free (job);
    }
}

static void
job_unref_value (gpointer data)
{
  WorkerJob *job = data;

  job->in_table = FALSE;
  job_unref (job);
}

WorkerQueue *
worker_queue_new (const WorkerQueueOptions *options, BsRedis *commands, BsService *service,
                  WorkerMetrics *metrics, WorkerJobHandler handler, WorkerDeadHandler dead_handler,
                  gpointer user_data)
{
  WorkerQueue *queue = g_new0 (WorkerQueue, 1);
  BsRedisOptions reader = *options->reader;

  queue->ref_count = 1;
  queue->stream = g_strdup (options->stream);
  queue->dead_stream = g_strconcat (options->stream, ":dead", NULL);
  queue->name = g_strdup (options->queue);
  queue->consumer = g_strdup (options->consumer);
  queue->reader_name = g_strconcat ("reader-", options->queue, NULL);
  queue->labels[0] = queue->name;
  queue->concurrency = MAX (options->concurrency, 1);
  queue->block_ms = options->block_ms;
  queue->claim_idle_ms = MAX (options->claim_idle_ms, 2);
  queue->max_deliveries = MAX (options->max_deliveries, 1);
  g_snprintf (queue->dead_maxlen, sizeof queue->dead_maxlen, "%u",
              options->dead_max_entries != 0 ? options->dead_max_entries : 10000);
  queue->commands = commands;
  queue->service = service;
  queue->metrics = metrics;
  queue->handler = handler;
  queue->dead_handler = dead_handler;
  queue->user_data = user_data;
  queue->jobs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, job_unref_value);
  queue->reasons = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  reader.name = queue->reader_name;
  queue->reader = bs_redis_new (&reader);
  bs_redis_set_state_func (queue->reader, reader_state_changed, queue);
  worker_metrics_add_queue (metrics, queue->name);
  worker_metrics_set_connected (metrics, queue->reader_name, FALSE);
  return queue;
}

void
worker_queue_free (WorkerQueue *queue)
{
  GHashTableIter iter;
  gpointer value;

  if (queue == NULL)
    return;
  queue->disposed = TRUE;
  worker_queue_claim_stop (queue);
  g_clear_handle_id (&queue->retry_id, g_source_remove);
  /* its read in flight hears CANCELLED now, and finds the queue disposed */
  g_clear_pointer (&queue->reader, bs_redis_free);
  /* jobs still running: their handlers see the cancellation; their
   * completions find the job out of the table and only drop it */
  g_hash_table_iter_init (&iter, queue->jobs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      WorkerJob *job = value;

      job->in_table = FALSE;
      g_cancellable_cancel (job->cancellable);
    }
  g_clear_pointer (&queue->jobs, g_hash_table_unref);
  g_clear_pointer (&queue->reasons, g_hash_table_unref);
  worker_queue_unref (queue);
}

const char *
worker_queue_get_name (WorkerQueue *queue)
{
  return queue->name;
}

gboolean
worker_queue_is_connected (WorkerQueue *queue)
{
  return queue->reader != NULL && bs_redis_is_connected (queue->reader);
}

guint
worker_queue_get_in_flight (WorkerQueue *queue)
{
  return g_hash_table_size (queue->jobs);
}

guint
worker_queue_free_slots (WorkerQueue *queue)
{
  guint used = g_hash_table_size (queue->jobs) + (queue->reading ? queue->read_count : 0)
               + queue->claim_reserved;

  return used >= queue->concurrency ? 0 : queue->concurrency - used;
}

/* ---- the group and the reader ------------------------------------------------- */

static gboolean
retry_cb (gpointer user_data)
{
  WorkerQueue *queue = user_data;

  queue->retry_id = 0;
  if (!queue->group_ready)
    create_group (queue);
  else
    worker_queue_read_more (queue);
  return G_SOURCE_REMOVE;
}

/* After an error the connection does not explain: not in a tight loop. */
static void
retry_later (WorkerQueue *queue)
{
  if (queue->retry_id == 0 && !queue->stopping)
    queue->retry_id = g_timeout_add (RETRY_AFTER_ERROR_MS, retry_cb, queue);
}

static gboolean
is_connection_error (const GError *error)
{
  return error->domain == G_IO_ERROR;
}

static void
group_created (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  WorkerQueue *queue = user_data;

  queue->creating_group = FALSE;
  if (queue->disposed)
    {
      worker_queue_unref (queue);
      return;
    }
  if (error == NULL || g_str_has_prefix (error->message, "BUSYGROUP"))
    {
      g_debug ("consumer group %s on %s ready", WORKER_GROUP, queue->stream);
      queue->group_ready = TRUE;
      worker_queue_read_more (queue);
      worker_queue_refresh_stats (queue);
    }
  else if (!is_connection_error (error))
    {
      worker_queue_log (queue, G_LOG_LEVEL_WARNING, NULL,
                        "cannot create consumer group %s on %s: %s; retrying", WORKER_GROUP,
                        queue->stream, error->message);
      retry_later (queue);
    }
  /* else: the state function creates it on the next connection */
  worker_queue_unref (queue);
}

/* From the start of the stream: events published while no worker ran are
 * processed too. */
static void
create_group (WorkerQueue *queue)
{
  if (queue->creating_group || queue->stopping || queue->reader == NULL
      || !bs_redis_is_connected (queue->reader))
    return;
  queue->creating_group = TRUE;
  bs_redis_command (queue->reader, 0, group_created, worker_queue_ref (queue), "XGROUP", "CREATE",
                    queue->stream, WORKER_GROUP, "0", "MKSTREAM", NULL);
}

/* XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]]], or nil
 * when BLOCK ran out. Reading this consumer's own pending entries, an entry
 * deleted from the stream since comes as [id, nil]: left to the claimer,
 * which acknowledges it; one still running here is skipped. Returns the id
 * of the last entry (owned by @reply), NULL when there was none. */
static const char *
take_entries (WorkerQueue *queue, const redisReply *reply)
{
  const char *last = NULL;

  for (size_t s = 0; s < reply->elements; s++)
    {
      const redisReply *stream = reply->element[s];
      const redisReply *entries;

      if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2)
        continue;
      entries = stream->element[1];
      if (entries->type != REDIS_REPLY_ARRAY)
        continue;
      for (size_t i = 0; i < entries->elements; i++)
        {
          char *id = NULL;
          GHashTable *fields = bs_redis_entry_fields (entries->element[i], &id);
          const redisReply *entry = entries->element[i];

          if (entry->type == REDIS_REPLY_ARRAY && entry->elements == 2
              && entry->element[0]->type == REDIS_REPLY_STRING)
            last = entry->element[0]->str;
          if (fields == NULL && queue->reading_history)
            continue;
          if (fields == NULL)
            {
              worker_queue_log (queue, G_LOG_LEVEL_WARNING, NULL,
                                "ignored an entry of %s that is not a stream entry", queue->stream);
              continue;
            }
          worker_queue_start_job (queue, id, fields, 1);
        }
    }
  return last;
}

static void
read_done (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  WorkerQueue *queue = user_data;

  if (queue->disposed)
    {
      queue->reading = FALSE;
      worker_queue_unref (queue);
      return;
    }
  if (error != NULL)
    {
      queue->reading = FALSE;
      if (g_str_has_prefix (error->message, "NOGROUP"))
        {
          /* the group or the stream was deleted under us */
          worker_queue_log (queue, G_LOG_LEVEL_WARNING, NULL,
                            "consumer group %s on %s is gone; creating it again", WORKER_GROUP,
                            queue->stream);
          queue->group_ready = FALSE;
          create_group (queue);
        }
      else if (!is_connection_error (error))
        {
          worker_queue_log (queue, G_LOG_LEVEL_WARNING, NULL, "XREADGROUP on %s failed: %s",
                            queue->stream, error->message);
          retry_later (queue);
        }
    }
  else
    {
      /* still "reading" while the jobs start: a job finishing at once must
       * not start another read before the rest of this batch has its slots.
       * Entries that come after a stop began are ours already: done too. */
      const char *last = reply->type == REDIS_REPLY_ARRAY ? take_entries (queue, reply) : NULL;

      if (queue->reading_history)
        {
          /* the next read goes on after the last entry, until none is left */
          g_free (queue->history_from);
          queue->history_from = g_strdup (last);
          if (last == NULL)
            g_debug ("%s: no more pending entries of this consumer", queue->stream);
        }
      queue->reading = FALSE;
      worker_queue_read_more (queue);
    }
  worker_queue_unref (queue);
}

void
worker_queue_read_more (WorkerQueue *queue)
{
  char count[16], block[16];
  guint free_slots;

  if (queue->disposed || queue->stopping || !queue->started || queue->reading || !queue->group_ready
      || queue->retry_id != 0 || queue->reader == NULL || !bs_redis_is_connected (queue->reader))
    return;
  if (queue->claim_first)
    {
      worker_queue_claim_now (queue); /* reads again once the claim is done */
      return;
    }
  free_slots = worker_queue_free_slots (queue);
  if (free_slots == 0)
    return;
  queue->reading = TRUE;
  queue->read_count = free_slots;
  g_snprintf (count, sizeof count, "%u", free_slots);
  queue->reading_history = queue->history_from != NULL;
  if (queue->reading_history)
    {
      /* an id instead of ">": this consumer's pending entries after it */
      bs_redis_command (queue->reader, 0, read_done, worker_queue_ref (queue), "XREADGROUP",
                        "GROUP", WORKER_GROUP, queue->consumer, "COUNT", count, "STREAMS",
                        queue->stream, queue->history_from, NULL);
      return;
    }
  g_snprintf (block, sizeof block, "%u", queue->block_ms);
  bs_redis_command (queue->reader, queue->block_ms, read_done, worker_queue_ref (queue),
                    "XREADGROUP", "GROUP", WORKER_GROUP, queue->consumer, "COUNT", count, "BLOCK",
                    block, "STREAMS", queue->stream, ">", NULL);
}

void
worker_queue_start (WorkerQueue *queue)
{
  g_return_if_fail (!queue->started);
  queue->started = TRUE;
  bs_redis_start (queue->reader);
  worker_queue_claim_start (queue);
}

/* No new reads or claims. A blocking read in flight is ended by closing
 * the reader's connection: not with CLIENT UNBLOCK, which may reach Redis
 * before the read does (the read then blocks for its whole BLOCK time) and
 * makes Redis 7.0 abort when the read waits in a CLIENT PAUSE WRITE
 * ("Unknown btype in replyToBlockedClientTimedOut"). What Redis handed to
 * that read in the same instant is taken back and processed
 * (worker-queue-reclaim.c), not left for another worker to claim after the
 * idle time. */
void
worker_queue_stop (WorkerQueue *queue)
{
  if (queue->stopping)
    return;
  queue->stopping = TRUE;
  queue->stop_started_us = g_get_monotonic_time ();
  worker_queue_claim_stop (queue);
  g_clear_handle_id (&queue->retry_id, g_source_remove);
  if (queue->reader != NULL)
    {
      gboolean was_reading = queue->reading;
      long long reader_client_id = queue->reader_client_id;

      /* its read in flight hears CANCELLED now */
      g_clear_pointer (&queue->reader, bs_redis_free);
      worker_metrics_set_connected (queue->metrics, queue->reader_name, FALSE);
      if (was_reading)
        worker_queue_reclaim_own (queue, reader_client_id);
    }
  if (g_hash_table_size (queue->jobs) > 0)
    worker_queue_log (queue, G_LOG_LEVEL_MESSAGE, NULL, "finishing %u jobs in flight",
                      g_hash_table_size (queue->jobs));
}

/* ---- jobs --------------------------------------------------------------------- */

static void
set_in_flight_gauge (WorkerQueue *queue)
{
  bs_metric_set (queue->metrics->in_flight, queue->labels, g_hash_table_size (queue->jobs));
}

void
worker_queue_start_job (WorkerQueue *queue, char *id, GHashTable *fields, guint deliveries)
{
  WorkerJob *job;

  if (g_hash_table_contains (queue->jobs, id))
    {
      /* delivered again while still running here: the running one acks it */
      g_free (id);
      g_hash_table_unref (fields);
      return;
    }
  job = g_new0 (WorkerJob, 1);
  job->ref_count = 2; /* the table's and the handler's */
  job->queue = worker_queue_ref (queue);
  job->id = id;
  job->fields = fields;
  job->deliveries = deliveries;
  job->started_us = g_get_monotonic_time ();
  job->cancellable = g_cancellable_new ();
  job->continued = bs_trace_start (&job->trace, g_hash_table_lookup (fields, "traceparent"));
  job->in_table = TRUE;
  g_hash_table_insert (queue->jobs, job->id, job);
  set_in_flight_gauge (queue);
  bs_service_hold (queue->service);
  queue->handler (job, queue->user_data);
}

/* The job no longer takes a slot: out of the table, the hold released. */
static void
job_leave (WorkerJob *job)
{
  WorkerQueue *queue = job->queue;

  if (!job->in_table || queue->disposed)
    return;
  g_hash_table_remove (queue->jobs, job->id); /* drops the table's reference */
  set_in_flight_gauge (queue);
  bs_service_release (queue->service);
  worker_queue_read_more (queue);
}

const char *
worker_job_get_id (WorkerJob *job)
{
  return job->id;
}

const char *
worker_job_get_field (WorkerJob *job, const char *name)
{
  return g_hash_table_lookup (job->fields, name);
}

gboolean
worker_job_get_positive_field (WorkerJob *job, const char *name, guint64 *out)
{
  const char *value = worker_job_get_field (job, name);

  return value != NULL && g_ascii_string_to_unsigned (value, 10, 1, G_MAXINT64, out, NULL);
}

guint
worker_job_get_deliveries (WorkerJob *job)
{
  return job->deliveries;
}

const char *
worker_job_get_consumer (WorkerJob *job)
{
  return job->queue->consumer;
}

const BsTrace *
worker_job_get_trace (WorkerJob *job)
{
  return &job->trace;
}

const char *
worker_job_get_tracestate (WorkerJob *job)
{
  const char *tracestate = worker_job_get_field (job, "tracestate");

  return job->continued && bs_tracestate_is_valid (tracestate) ? tracestate : NULL;
}

GCancellable *
worker_job_get_cancellable (WorkerJob *job)
{
  return job->cancellable;
}

WorkerFailureClass
worker_failure_class_for_redis (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ? WORKER_FAILURE_TIMEOUT
                                                                   : WORKER_FAILURE_OTHER;
}

/* Mark the job finished; FALSE when its queue is gone (then it is dropped). */
static gboolean
job_finishing (WorkerJob *job)
{
  g_return_val_if_fail (!job->finished, FALSE);
  job->finished = TRUE;
  if (!job->in_table || job->queue->disposed)
    {
      job_unref (job);
      return FALSE;
    }
  /* the job's trace as the exemplar (OpenMetrics) */
  bs_metric_observe_exemplar (job->queue->metrics->duration, job->queue->labels,
                              (double) (g_get_monotonic_time () - job->started_us) / G_USEC_PER_SEC,
                              job->trace.trace_id);
  g_hash_table_remove (job->queue->reasons, job->id);
  return TRUE;
}

static void
ack_done (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  WorkerJob *job = user_data;

  if (error != NULL && !job->queue->disposed)
    job_log (job, G_LOG_LEVEL_WARNING, "XACK of %s failed: %s; it will be delivered again", job->id,
             error->message);
  job_leave (job);
  job_unref (job);
}

/* Acknowledge, then free the slot (consumes the handler's reference). */
static void
job_ack (WorkerJob *job)
{
  WorkerQueue *queue = job->queue;

  bs_redis_command (queue->commands, 0, ack_done, job, "XACK", queue->stream, WORKER_GROUP, job->id,
                    NULL);
}

void
worker_job_complete (WorkerJob *job)
{
  if (!job_finishing (job))
    return;
  bs_metric_inc (job->queue->metrics->completed, job->queue->labels, 1);
  job_ack (job);
}

void
worker_job_skip (WorkerJob *job, const char *why)
{
  if (!job_finishing (job))
    return;
  job_log (job, G_LOG_LEVEL_INFO, "job %s skipped: %s", job->id, why);
  bs_metric_inc (job->queue->metrics->skipped, job->queue->labels, 1);
  job_ack (job);
}

static void
count_failure (WorkerJob *job, WorkerFailureClass failure_class)
{
  WorkerQueue *queue = job->queue;

  bs_metric_inc (
      queue->metrics->failed,
      (const char *const[]){ queue->name, worker_failure_class_to_string (failure_class), NULL },
      1);
}

void
worker_job_reject (WorkerJob *job, WorkerFailureClass failure_class, const char *reason)
{
  if (!job_finishing (job))
    return;
  job_log (job, G_LOG_LEVEL_WARNING, "job %s rejected (not retried): %s", job->id, reason);
  count_failure (job, failure_class);
  job_ack (job);
}

static void
remember_reason (WorkerQueue *queue, const char *id, const char *reason)
{
  if (g_hash_table_size (queue->reasons) >= MAX_REMEMBERED_REASONS
      && !g_hash_table_contains (queue->reasons, id))
    {
      GHashTableIter iter;

      /* bounded: forget one at random (it is dead-lettered with a vaguer reason) */
      g_hash_table_iter_init (&iter, queue->reasons);
      if (g_hash_table_iter_next (&iter, NULL, NULL))
        g_hash_table_iter_remove (&iter);
    }
  g_hash_table_replace (queue->reasons, g_strdup (id), g_strdup (reason));
}

void
worker_job_fail (WorkerJob *job, WorkerFailureClass failure_class, const char *reason)
{
  WorkerQueue *queue = job->queue;

  if (!job_finishing (job))
    return;
  count_failure (job, failure_class);
  remember_reason (queue, job->id, reason);
  if (queue->stopping)
    job_log (job, G_LOG_LEVEL_WARNING,
             "job %s failed (delivery %u): %s; left pending for another worker", job->id,
             job->deliveries, reason);
  else
    job_log (job, G_LOG_LEVEL_WARNING, "job %s failed (delivery %u of %u): %s; %s after %u ms",
             job->id, job->deliveries, queue->max_deliveries, reason,
             job->deliveries >= queue->max_deliveries ? "dead-lettered" : "retried",
             queue->claim_idle_ms);
  job_leave (job);
  job_unref (job);
}
