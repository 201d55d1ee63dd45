/* worker-queue-claim.c: entries left pending (a failed job, or a consumer
 * that died) are taken over after the idle time, or moved to <stream>:dead
 * (capped at WORKER_DEAD_MAX_ENTRIES) after too many deliveries; the
 * consumers stopped processes of this host left are deleted; and the
 * group's pending/lag gauges. */
#include "worker-queue-private.h"

#include "worker-streams.h"

#include "bs-stream.h"

#define STATS_INTERVAL_MS 2000
#define PENDING_BATCH "100"

typedef struct
{
  WorkerQueue *queue;
  GHashTable *deliveries; /* id → times delivered so far (XPENDING) */
} ClaimOp;

typedef struct
{
  WorkerQueue *queue;
  char *id;
  guint deliveries;
  char *reason;
  GHashTable *fields;
} DeadOp;

static void
claim_op_free (ClaimOp *op)
{
  worker_queue_unref (op->queue);
  g_hash_table_unref (op->deliveries);
  g_free (op);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClaimOp, claim_op_free)

static void
dead_op_free (DeadOp *op)
{
  worker_queue_unref (op->queue);
  g_free (op->id);
  g_free (op->reason);
  g_clear_pointer (&op->fields, g_hash_table_unref);
  g_free (op);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DeadOp, dead_op_free)

static char *
format_ms (guint ms)
{
  return g_strdup_printf ("%u", ms);
}

/* ---- dead letters: XCLAIM (one worker wins), copy, hook, XACK ---------------- */

static void
dead_acked (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (DeadOp) op = user_data;
  WorkerQueue *queue = op->queue;

  if (queue->disposed)
    return;
  if (error != NULL)
    {
      worker_queue_log_entry (queue, G_LOG_LEVEL_WARNING, op->id, op->fields,
                              "job %s copied to %s but not acknowledged: %s", op->id,
                              queue->dead_stream, error->message);
      return;
    }
  bs_metric_inc (queue->metrics->dead_lettered, queue->labels, 1);
  worker_queue_log_entry (queue, G_LOG_LEVEL_WARNING, op->id, op->fields,
                          "job %s dead-lettered to %s after %u deliveries: %s", op->id,
                          queue->dead_stream, op->deliveries, op->reason);
}

static void
dead_done (gpointer user_data)
{
  DeadOp *op = user_data;
  WorkerQueue *queue = op->queue;

  if (queue->disposed)
    {
      dead_op_free (op);
      return;
    }
  bs_redis_command (queue->commands, 0, dead_acked, op, "XACK", queue->stream, WORKER_GROUP, op->id,
                    NULL);
}

static void
dead_copied (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (DeadOp) op = user_data;
  WorkerQueue *queue = op->queue;

  if (queue->disposed)
    return;
  if (error != NULL)
    {
      worker_queue_log_entry (queue, G_LOG_LEVEL_WARNING, op->id, op->fields,
                              "cannot copy job %s to %s: %s; trying again later", op->id,
                              queue->dead_stream, error->message);
      return;
    }
  if (queue->dead_handler != NULL)
    {
      DeadOp *owned = g_steal_pointer (&op);

      queue->dead_handler (owned->id, owned->fields, owned->deliveries, owned->reason, dead_done,
                           owned, queue->user_data);
    }
  else
    dead_done (g_steal_pointer (&op));
}

/* XADD <stream>:dead MAXLEN <n> * <the original fields> dead_original_id ... */
static void
copy_to_dead (DeadOp *op)
{
  WorkerQueue *queue = op->queue;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *deliveries = g_strdup_printf ("%u", op->deliveries);
  GHashTableIter iter;
  gpointer key, value;

  g_ptr_array_add (argv, (gpointer) "XADD");
  g_ptr_array_add (argv, queue->dead_stream);
  g_ptr_array_add (argv, (gpointer) "MAXLEN"); /* the oldest dead letters go first */
  g_ptr_array_add (argv, queue->dead_maxlen);
  g_ptr_array_add (argv, (gpointer) "*");
  g_hash_table_iter_init (&iter, op->fields);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_str_has_prefix (key, "dead_")) /* ours, when an operator re-queued a dead entry */
      {
        g_ptr_array_add (argv, key);
        g_ptr_array_add (argv, value);
      }
  for (const char *const *kv
       = (const char *const[]){ "dead_original_id", op->id, "dead_queue", queue->name,
                                "dead_deliveries", deliveries, "dead_reason", op->reason, NULL };
       *kv != NULL; kv += 2)
    {
      g_ptr_array_add (argv, (gpointer) kv[0]);
      g_ptr_array_add (argv, (gpointer) kv[1]);
    }
  /* the arguments are copied into the command buffer before this returns */
  bs_redis_command_argv (queue->commands, 0, (int) argv->len, (const char **) argv->pdata, NULL,
                         dead_copied, op);
}

static void
dead_claimed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (DeadOp) op = user_data;
  WorkerQueue *queue = op->queue;
  g_autofree char *id = NULL;

  if (queue->disposed || error != NULL)
    return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
    return; /* another worker took it meanwhile, or the entry was deleted */
  op->fields = bs_redis_entry_fields (reply->element[0], &id);
  if (op->fields == NULL)
    {
      worker_queue_log (queue, G_LOG_LEVEL_WARNING, op->id,
                        "job %s is gone from %s; acknowledged without a copy", op->id,
                        queue->stream);
      op->fields = g_hash_table_new (g_str_hash, g_str_equal);
    }
  copy_to_dead (g_steal_pointer (&op));
}

static void
dead_letter (WorkerQueue *queue, const char *id, guint deliveries)
{
  DeadOp *op = g_new0 (DeadOp, 1);
  const char *reason = g_hash_table_lookup (queue->reasons, id);
  g_autofree char *idle = format_ms (queue->claim_idle_ms);

  op->queue = worker_queue_ref (queue);
  op->id = g_strdup (id);
  op->deliveries = deliveries;
  op->reason = reason != NULL
                   ? g_strdup (reason)
                   : g_strdup_printf ("no success in %u deliveries (the last failure was in "
                                      "another worker or before a restart)",
                                      deliveries);
  g_hash_table_remove (queue->reasons, id);
  bs_redis_command (queue->commands, 0, dead_claimed, op, "XCLAIM", queue->stream, WORKER_GROUP,
                    queue->consumer, idle, id, NULL);
}

/* ---- retries: XPENDING ... IDLE, then XCLAIM what fits -------------------------- */

/* [id, consumer, idle ms, times delivered] */
gboolean
worker_pending_entry (const redisReply *entry, const char **id, gint64 *idle_ms, guint *deliveries)
{
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 4
      || (*id = bs_redis_reply_str (entry->element[0])) == NULL
      || entry->element[2]->type != REDIS_REPLY_INTEGER
      || entry->element[3]->type != REDIS_REPLY_INTEGER)
    return FALSE;
  *idle_ms = entry->element[2]->integer;
  *deliveries = (guint) CLAMP (entry->element[3]->integer, 0, G_MAXUINT);
  return TRUE;
}

static void
claimed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (ClaimOp) op = user_data;
  WorkerQueue *queue = op->queue;

  if (queue->disposed)
    return;
  if (error != NULL)
    g_debug ("XCLAIM on %s failed: %s", queue->stream, error->message);
  else if (reply->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < reply->elements; i++)
      {
        char *id = NULL;
        GHashTable *fields = bs_redis_entry_fields (reply->element[i], &id);
        guint deliveries;

        if (fields == NULL || queue->stopping)
          {
            /* deleted from the stream; or stopping: left pending for another worker */
            g_free (id);
            g_clear_pointer (&fields, g_hash_table_unref);
            continue;
          }
        deliveries = GPOINTER_TO_UINT (g_hash_table_lookup (op->deliveries, id)) + 1;
        bs_metric_inc (queue->metrics->claimed, queue->labels, 1);
        worker_queue_log_entry (queue, G_LOG_LEVEL_INFO, id, fields, "claimed job %s (delivery %u)",
                                id, deliveries);
        worker_queue_start_job (queue, id, fields, deliveries);
      }
  queue->claim_reserved = 0;
  queue->claiming = FALSE;
  worker_queue_read_more (queue);
}

/* XPENDING reply: [[id, consumer, idle ms, times delivered], ...]. Claims
 * what fits in the free slots; when the blocking read in flight holds them,
 * the next read waits for a claim (claim_first): retries are not starved. */
static void
pending_listed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (ClaimOp) op = user_data;
  WorkerQueue *queue = op->queue;
  g_autoptr (GPtrArray) argv = NULL;
  g_autofree char *idle = NULL;
  guint room;

  gboolean more = FALSE;

  if (queue->disposed)
    return;
  queue->claim_first = FALSE;
  if (error != NULL || reply->type != REDIS_REPLY_ARRAY || queue->stopping)
    {
      if (error != NULL && error->domain != G_IO_ERROR
          && !g_str_has_prefix (error->message, "NOGROUP"))
        worker_queue_log (queue, G_LOG_LEVEL_WARNING, NULL, "XPENDING on %s failed: %s",
                          queue->stream, error->message);
      queue->claiming = FALSE;
      worker_queue_read_more (queue);
      return;
    }
  idle = format_ms (queue->claim_idle_ms);
  argv = g_ptr_array_new_with_free_func (g_free);
  for (const char *const *a = (const char *const[]){ "XCLAIM", queue->stream, WORKER_GROUP,
                                                     queue->consumer, idle, NULL };
       *a != NULL; a++)
    g_ptr_array_add (argv, g_strdup (*a));
  room = worker_queue_free_slots (queue);
  for (size_t i = 0; i < reply->elements; i++)
    {
      const char *id;
      gint64 idle_ms;
      guint deliveries;

      if (!worker_pending_entry (reply->element[i], &id, &idle_ms, &deliveries))
        continue;
      if (g_hash_table_contains (queue->jobs, id))
        continue; /* still running here, just slow */
      if (deliveries >= queue->max_deliveries)
        dead_letter (queue, id, deliveries);
      else if (argv->len - 5 < room)
        {
          g_ptr_array_add (argv, g_strdup (id));
          g_hash_table_replace (op->deliveries, g_strdup (id), GUINT_TO_POINTER (deliveries));
        }
      else
        more = TRUE;
    }
  /* the blocking read holds the slots: claim before the next read */
  if (more && queue->reading)
    queue->claim_first = TRUE;
  if (argv->len == 5)
    {
      queue->claiming = FALSE;
      worker_queue_read_more (queue);
      return;
    }
  queue->claim_reserved = argv->len - 5;
  bs_redis_command_argv (queue->commands, 0, (int) argv->len, (const char **) argv->pdata, NULL,
                         claimed, g_steal_pointer (&op));
}

void
worker_queue_claim_now (WorkerQueue *queue)
{
  ClaimOp *op;
  g_autofree char *idle = NULL;

  if (queue->claiming || queue->stopping || queue->disposed
      || !bs_redis_is_connected (queue->commands))
    return;
  queue->claiming = TRUE;
  op = g_new0 (ClaimOp, 1);
  op->queue = worker_queue_ref (queue);
  op->deliveries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  idle = format_ms (queue->claim_idle_ms);
  bs_redis_command (queue->commands, 0, pending_listed, op, "XPENDING", queue->stream, WORKER_GROUP,
                    "IDLE", idle, "-", "+", PENDING_BATCH, NULL);
}

/* ---- consumers of stopped processes: XINFO CONSUMERS, XGROUP DELCONSUMER ---------- */

static void
consumers_deleted (const char *const *deleted, const GError *error, gpointer user_data)
{
  WorkerQueue *queue = user_data;

  queue->consumers_busy = FALSE;
  if (!queue->disposed && deleted[0] != NULL)
    {
      g_autofree char *names = g_strjoinv (", ", (char **) deleted);

      worker_queue_log (queue, G_LOG_LEVEL_MESSAGE, NULL,
                        "deleted %u consumers of stopped processes of this host from group %s on "
                        "%s: %s",
                        g_strv_length ((char **) deleted), WORKER_GROUP, queue->stream, names);
    }
  if (!queue->disposed && error != NULL && error->domain != G_IO_ERROR)
    worker_queue_log (queue, G_LOG_LEVEL_INFO, NULL,
                      "deleting consumers of stopped processes on %s failed: %s", queue->stream,
                      error->message);
  worker_queue_unref (queue);
}

/* Each restart without WORKER_NAME is a new consumer <hostname>-<pid>: the
 * ones of processes of this host that are gone, idle past the claim time
 * and with nothing pending (the claimer took what they held) are deleted,
 * so that restarts do not pile them up. */
static void
delete_dead_consumers (WorkerQueue *queue)
{
  if (queue->consumers_busy || queue->stopping || queue->disposed
      || !bs_redis_is_connected (queue->commands))
    return;
  queue->consumers_busy = TRUE;
  bs_stream_delete_dead_consumers (queue->commands, queue->stream, WORKER_GROUP, queue->consumer,
                                   queue->claim_idle_ms, consumers_deleted,
                                   worker_queue_ref (queue));
}

static gboolean
claim_tick (gpointer user_data)
{
  worker_queue_claim_now (user_data);
  delete_dead_consumers (user_data);
  return G_SOURCE_CONTINUE;
}

/* ---- statistics: XINFO GROUPS ------------------------------------------------------ */

/* One group of the XINFO GROUPS reply: [name, v, consumers, v, pending, v, ...]. */
static void
read_group_info (WorkerQueue *queue, const redisReply *group)
{
  const char *name = NULL;
  const redisReply *pending = NULL, *lag = NULL;

  if (group->type != REDIS_REPLY_ARRAY || group->elements % 2 != 0)
    return;
  for (size_t i = 0; i < group->elements; i += 2)
    {
      const char *key = bs_redis_reply_str (group->element[i]);

      if (g_strcmp0 (key, "name") == 0)
        name = bs_redis_reply_str (group->element[i + 1]);
      else if (g_strcmp0 (key, "pending") == 0)
        pending = group->element[i + 1];
      else if (g_strcmp0 (key, "lag") == 0)
        lag = group->element[i + 1];
    }
  if (g_strcmp0 (name, WORKER_GROUP) != 0)
    return;
  if (pending != NULL && pending->type == REDIS_REPLY_INTEGER)
    bs_metric_set (queue->metrics->pending, queue->labels, (double) pending->integer);
  /* nil when Redis cannot tell (entries deleted): keep the last value */
  if (lag != NULL && lag->type == REDIS_REPLY_INTEGER)
    bs_metric_set (queue->metrics->lag, queue->labels, (double) lag->integer);
}

static void
stats_done (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  WorkerQueue *queue = user_data;

  queue->stats_busy = FALSE;
  if (!queue->disposed && error == NULL && reply->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < reply->elements; i++)
      read_group_info (queue, reply->element[i]);
  worker_queue_unref (queue);
}

void
worker_queue_refresh_stats (WorkerQueue *queue)
{
  if (queue->stats_busy || queue->disposed || !bs_redis_is_connected (queue->commands))
    return;
  queue->stats_busy = TRUE;
  bs_redis_command (queue->commands, 0, stats_done, worker_queue_ref (queue), "XINFO", "GROUPS",
                    queue->stream, NULL);
}

static gboolean
stats_tick (gpointer user_data)
{
  worker_queue_refresh_stats (user_data);
  return G_SOURCE_CONTINUE;
}

void
worker_queue_claim_start (WorkerQueue *queue)
{
  queue->claim_id = g_timeout_add (MAX (queue->claim_idle_ms / 2, 1), claim_tick, queue);
  queue->stats_id = g_timeout_add (STATS_INTERVAL_MS, stats_tick, queue);
}

void
worker_queue_claim_stop (WorkerQueue *queue)
{
  g_clear_handle_id (&queue->claim_id, g_source_remove);
  g_clear_handle_id (&queue->stats_id, g_source_remove);
}
