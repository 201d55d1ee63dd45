/* worker-queue-reclaim.c: at stop, the entries Redis handed to the reader
 * connection that was just closed.
 *
 * A blocking XREADGROUP that Redis answers in the instant the reader closes
 * has put its entries in this consumer's pending list, but nobody reads the
 * reply. CLIENT KILL ID on the command connection makes sure Redis has
 * dropped the reader (after its reply nothing more is delivered to it); then
 * XPENDING for this consumer lists what it was given since the stop (and
 * just before), and XCLAIM (idle 0)
 * hands those entries back to us with their fields, to be processed before
 * the exit like any job in flight. The service is held until this is done.
 * Not CLIENT UNBLOCK: see worker_queue_stop(). */
#include "worker-queue-private.h"

#include "worker-streams.h"

#define RECLAIM_BATCH "100"
/* An entry delivered this long before the stop may still have been unread
 * in the reader's socket when it was closed. */
#define DELIVERED_BEFORE_STOP_MS 1000

typedef struct
{
  WorkerQueue *queue;
  GHashTable *deliveries; /* id → times delivered so far (XPENDING) */
} ReclaimOp;

static void
reclaim_op_free (ReclaimOp *op)
{
  bs_service_release (op->queue->service);
  worker_queue_unref (op->queue);
  g_hash_table_unref (op->deliveries);
  g_free (op);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ReclaimOp, reclaim_op_free)

static void
reclaimed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (ReclaimOp) op = user_data;
  WorkerQueue *queue = op->queue;

  if (queue->disposed)
    return;
  if (error != NULL)
    {
      worker_queue_log (queue, G_LOG_LEVEL_WARNING, NULL,
                        "XCLAIM of this consumer's pending entries on %s failed: %s; another "
                        "worker claims them after WORKER_CLAIM_IDLE_MS",
                        queue->stream, error->message);
      return;
    }
  if (reply->type != REDIS_REPLY_ARRAY)
    return;
  for (size_t i = 0; i < reply->elements; i++)
    {
      char *id = NULL;
      GHashTable *fields = bs_redis_entry_fields (reply->element[i], &id);

      if (fields == NULL)
        {
          g_free (id); /* deleted from the stream meanwhile */
          continue;
        }
      worker_queue_log_entry (queue, G_LOG_LEVEL_INFO, id, fields,
                              "took back job %s, read as the stop began", id);
      worker_queue_start_job (queue, id, fields,
                              GPOINTER_TO_UINT (g_hash_table_lookup (op->deliveries, id)) + 1);
    }
}

/* XPENDING reply for this consumer: [[id, consumer, idle ms, times delivered], ...] */
static void
own_pending_listed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (ReclaimOp) op = user_data;
  WorkerQueue *queue = op->queue;
  g_autoptr (GPtrArray) argv = NULL;
  gint64 since_stop_ms;

  if (queue->disposed || error != NULL || reply->type != REDIS_REPLY_ARRAY)
    return;
  since_stop_ms = (g_get_monotonic_time () - queue->stop_started_us) / 1000;
  argv = g_ptr_array_new ();
  for (const char *const *a
       = (const char *const[]){ "XCLAIM", queue->stream, WORKER_GROUP, queue->consumer, "0", NULL };
       *a != NULL; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  for (size_t i = 0; i < reply->elements; i++)
    {
      const char *id;
      gint64 idle_ms;
      guint deliveries;

      if (!worker_pending_entry (reply->element[i], &id, &idle_ms, &deliveries))
        continue;
      /* running here already; delivered well before the stop (a failed job
       * waiting for its retry, or left by an earlier process with this
       * consumer name: the claimers retry those after the idle time); or due
       * for the dead letters, which the claimers see to */
      if (g_hash_table_contains (queue->jobs, id)
          || idle_ms > since_stop_ms + DELIVERED_BEFORE_STOP_MS
          || deliveries >= queue->max_deliveries)
        continue;
      g_hash_table_replace (op->deliveries, g_strdup (id), GUINT_TO_POINTER (deliveries));
      g_ptr_array_add (argv, (gpointer) id); /* the command is formatted at once */
    }
  if (argv->len == 5)
    return;
  bs_redis_command_argv (queue->commands, 0, (int) argv->len, (const char **) argv->pdata, NULL,
                         reclaimed, g_steal_pointer (&op));
}

static void
reader_killed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autoptr (ReclaimOp) op = user_data;
  WorkerQueue *queue = op->queue;

  /* an error reply ("No such client") means Redis had dropped it already */
  if (queue->disposed || (error != NULL && error->domain == G_IO_ERROR))
    return;
  bs_redis_command (queue->commands, 0, own_pending_listed, g_steal_pointer (&op), "XPENDING",
                    queue->stream, WORKER_GROUP, "-", "+", RECLAIM_BATCH, queue->consumer, NULL);
}

void
worker_queue_reclaim_own (WorkerQueue *queue, long long reader_client_id)
{
  ReclaimOp *op;
  char id[32];

  if (queue->disposed || !bs_redis_is_connected (queue->commands))
    return;
  op = g_new0 (ReclaimOp, 1);
  op->queue = worker_queue_ref (queue);
  op->deliveries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  bs_service_hold (queue->service);
  if (reader_client_id <= 0)
    {
      /* its CLIENT ID never came: look at once */
      reader_killed (queue->commands, NULL, NULL, op);
      return;
    }
  g_snprintf (id, sizeof id, "%lld", reader_client_id);
  bs_redis_command (queue->commands, 0, reader_killed, op, "CLIENT", "KILL", "ID", id, NULL);
}
