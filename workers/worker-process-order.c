/* worker-process-order.c: one order.created event → processing, the steps
 * (inventory check, payment, fulfillment: simulated with timers), then
 * completed or failed; marked done; a notification when completed.
 *
 * Idempotent: an order already marked done (bookstore:orders:done:<id>) is
 * acknowledged without publishing anything. The final status, the mark and
 * the notification are published in one script: a redelivery before it
 * publishes "processing" again (which the orders service ignores), never a
 * second outcome. */
#include "worker-process-order.h"

#include "worker-streams.h"

#include "bs-log.h"

#include <string.h>

struct _WorkerProcessOrder
{
  BsRedis *commands;
  guint step_delay_ms;
  guint stock_limit;
  guint done_ttl_s;
  char *recipient;
};

typedef enum
{
  STEP_INVENTORY,
  STEP_PAYMENT,
  STEP_FULFILMENT,
  N_STEPS,
} Step;

static const char *const step_names[N_STEPS] = { "inventory check", "payment", "fulfillment" };

typedef struct
{
  WorkerProcessOrder *self;
  WorkerJob *job; /* the handler's reference, handed to its completion */
  char order_id[24];
  guint64 quantity;
  Step step;
  const char *status; /* final: "completed" or "failed" */
  char *reason;       /* with "failed" */
} Run;

static void run_step (Run *run);

static void
run_free (Run *run)
{
  g_warn_if_fail (run->job == NULL); /* every path hands the job to a completion */
  g_free (run->reason);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

WorkerProcessOrder *
worker_process_order_new (BsRedis *commands, const WorkerConfig *config)
{
  WorkerProcessOrder *self = g_new0 (WorkerProcessOrder, 1);

  self->commands = commands;
  self->step_delay_ms = config->step_delay_ms;
  self->stock_limit = config->stock_limit;
  self->done_ttl_s = config->done_ttl_s;
  self->recipient = g_strdup (config->notify_recipient);
  return self;
}

void
worker_process_order_free (WorkerProcessOrder *self)
{
  if (self == NULL)
    return;
  g_free (self->recipient);
  g_free (self);
}

/* The job's span as the traceparent of the entries it publishes (status,
 * notification), so that what they cause joins the order's trace. */
static void
format_traceparent (Run *run, char *out)
{
  bs_trace_format (worker_job_get_trace (run->job), out);
}

/* A record with ORDER_ID (and STEP) for journalctl ORDER_ID=... */
static void log_order (GLogLevelFlags level, Run *run, const char *step, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

static void
log_order (GLogLevelFlags level, Run *run, const char *step, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  {
    GLogField fields[] = {
      { "PRIORITY", level & G_LOG_LEVEL_WARNING ? "4" : "6", -1 },
      { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
      { "QUEUE", WORKER_QUEUE_PROCESS_ORDER, -1 },
      { "JOB_ID", worker_job_get_id (run->job), -1 },
      BS_TRACE_LOG_FIELDS (worker_job_get_trace (run->job)),
      { "ORDER_ID", run->order_id, -1 },
      { "STEP", step != NULL ? step : "-", -1 },
      { "MESSAGE", message, -1 },
    };
    bs_log_fields (level, fields, G_N_ELEMENTS (fields));
  }
}

/* Fail the job on a Redis error (retried later); TRUE when it failed. */
static gboolean
failed_on (Run *run, const char *what, const GError *error)
{
  g_autofree char *reason = NULL;

  if (error == NULL)
    return FALSE;
  reason = g_strdup_printf ("%s for order %s: %s", what, run->order_id, error->message);
  worker_job_fail (g_steal_pointer (&run->job), worker_failure_class_for_redis (error), reason);
  run_free (run);
  return TRUE;
}

/* ---- the end: status, done mark and notification at once ------------------------ */

/* One script, so that Redis applies all of it or none: a worker killed at
 * any moment leaves either no trace of the end (the redelivery does it) or
 * the done mark with it (the redelivery is skipped). Never a second final
 * status or notification for one order.
 * KEYS: status stream, done key, notifications stream.
 * ARGV: order id, status, event id, worker, done TTL (s), recipient,
 * traceparent, tracestate ("" for none)[, reason] */
static const char finish_script[]
    = "local f = {'order_id', ARGV[1], 'status', ARGV[2], 'event_id', ARGV[3], 'worker', ARGV[4]}\n"
      "if ARGV[9] then f[#f + 1] = 'reason'; f[#f + 1] = ARGV[9] end\n"
      "local t = {'traceparent', ARGV[7]}\n"
      "if ARGV[8] ~= '' then t[3] = 'tracestate'; t[4] = ARGV[8] end\n"
      "for _, v in ipairs(t) do f[#f + 1] = v end\n"
      "redis.call('XADD', KEYS[1], '*', unpack(f))\n"
      "redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])\n"
      "if ARGV[2] == 'completed' then\n"
      "  local n = {'type', 'order.completed', 'order_id', ARGV[1], 'recipient', ARGV[6]}\n"
      "  for _, v in ipairs(t) do n[#n + 1] = v end\n"
      "  redis.call('XADD', KEYS[3], '*', unpack(n))\n"
      "end\n"
      "return 1\n";

static void
finished (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Run *run = user_data;

  if (failed_on (run, "publishing the outcome", error))
    return;
  log_order (G_LOG_LEVEL_INFO, run, NULL, "order %s %s", run->order_id, run->status);
  worker_job_complete (g_steal_pointer (&run->job));
  run_free (run);
}

static void
finish (Run *run, const char *status)
{
  g_autofree char *done_key = g_strconcat (WORKER_DONE_KEY_PREFIX, run->order_id, NULL);
  char ttl[16];
  char traceparent[BS_TRACEPARENT_LEN + 1];
  const char *tracestate = worker_job_get_tracestate (run->job);
  const char *argv[] = { "EVAL",
                         finish_script,
                         "3",
                         WORKER_STREAM_ORDER_STATUS,
                         done_key,
                         WORKER_STREAM_NOTIFICATIONS,
                         run->order_id,
                         status,
                         worker_job_get_id (run->job),
                         worker_job_get_consumer (run->job),
                         ttl,
                         run->self->recipient,
                         traceparent,
                         tracestate != NULL ? tracestate : "",
                         run->reason };

  run->status = status;
  format_traceparent (run, traceparent);
  g_snprintf (ttl, sizeof ttl, "%u", run->self->done_ttl_s);
  bs_redis_command_argv (run->self->commands, 0,
                         run->reason != NULL ? G_N_ELEMENTS (argv) : G_N_ELEMENTS (argv) - 1, argv,
                         NULL, finished, run);
}

/* ---- the steps ----------------------------------------------------------------- */

static gboolean
step_due (gpointer user_data)
{
  Run *run = user_data;

  if (g_cancellable_is_cancelled (worker_job_get_cancellable (run->job)))
    {
      worker_job_fail (g_steal_pointer (&run->job), WORKER_FAILURE_OTHER, "worker stopped");
      run_free (run);
      return G_SOURCE_REMOVE;
    }
  log_order (G_LOG_LEVEL_INFO, run, step_names[run->step], "order %s: %s done", run->order_id,
             step_names[run->step]);
  if (run->step == STEP_INVENTORY && run->quantity > run->self->stock_limit)
    {
      run->reason = g_strdup_printf ("insufficient stock: %" G_GUINT64_FORMAT
                                     " requested, at most %u available",
                                     run->quantity, run->self->stock_limit);
      log_order (G_LOG_LEVEL_MESSAGE, run, step_names[run->step], "order %s failed: %s",
                 run->order_id, run->reason);
      finish (run, "failed");
      return G_SOURCE_REMOVE;
    }
  run->step++;
  if (run->step == N_STEPS)
    finish (run, "completed");
  else
    run_step (run);
  return G_SOURCE_REMOVE;
}

/* Each step takes WORKER_STEP_DELAY_MS on a timer: never a sleep. */
static void
run_step (Run *run)
{
  g_timeout_add (run->self->step_delay_ms, step_due, run);
}

static void
processing_published (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Run *run = user_data;

  if (failed_on (run, "publishing the status", error))
    return;
  run->step = STEP_INVENTORY;
  run_step (run);
}

static void
done_checked (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Run *run = user_data;
  const char *done;
  char traceparent[BS_TRACEPARENT_LEN + 1];

  if (failed_on (run, "checking whether the order is done", error))
    return;
  done = bs_redis_reply_str (reply);
  if (done != NULL)
    {
      g_autofree char *why = g_strdup_printf ("order %s already %s", run->order_id, done);

      worker_job_skip (g_steal_pointer (&run->job), why);
      run_free (run);
      return;
    }
  log_order (G_LOG_LEVEL_INFO, run, NULL, "processing order %s (quantity %" G_GUINT64_FORMAT ")",
             run->order_id, run->quantity);
  format_traceparent (run, traceparent);
  {
    const char *tracestate = worker_job_get_tracestate (run->job);
    const char *argv[] = { "XADD",
                           WORKER_STREAM_ORDER_STATUS,
                           "*",
                           "order_id",
                           run->order_id,
                           "status",
                           "processing",
                           "event_id",
                           worker_job_get_id (run->job),
                           "worker",
                           worker_job_get_consumer (run->job),
                           "traceparent",
                           traceparent,
                           "tracestate",
                           tracestate };

    bs_redis_command_argv (run->self->commands, 0,
                           tracestate != NULL ? G_N_ELEMENTS (argv) : G_N_ELEMENTS (argv) - 2, argv,
                           NULL, processing_published, run);
  }
}

/* ---- the event ----------------------------------------------------------------- */

void
worker_process_order_handle (WorkerJob *job, gpointer user_data)
{
  g_autoptr (Run) run = g_new0 (Run, 1);
  const char *type = worker_job_get_field (job, "type");
  guint64 id = 0;

  run->self = user_data;
  run->job = job;
  if (type != NULL && !g_str_equal (type, "order.created"))
    {
      g_autofree char *why = g_strdup_printf ("not an order.created event: %s", type);

      worker_job_skip (g_steal_pointer (&run->job), why);
      return;
    }
  if (type == NULL || !worker_job_get_positive_field (job, "order_id", &id)
      || !worker_job_get_positive_field (job, "quantity", &run->quantity))
    {
      worker_job_fail (g_steal_pointer (&run->job), WORKER_FAILURE_OTHER,
                       "malformed event: type missing, or order_id or quantity missing or not a "
                       "positive integer");
      return;
    }
  g_snprintf (run->order_id, sizeof run->order_id, "%" G_GUINT64_FORMAT, id);
  {
    g_autofree char *key = g_strconcat (WORKER_DONE_KEY_PREFIX, run->order_id, NULL);
    Run *owned = g_steal_pointer (&run);

    bs_redis_command (owned->self->commands, 0, done_checked, owned, "GET", key, NULL);
  }
}
