/* orders-status.c: one step at a time on the blocking connection: create
 * the group (after each connect), claim what dead consumers left, delete
 * the consumers that stopped processes of this host left (bs-stream.h),
 * re-read our own pending entries (after each connect or database failure),
 * then block for new ones; each batch is applied entry by entry, in order,
 * and acknowledged in one XACK.
 *
 * Lifetime: the consumer is reference counted; each database query holds a
 * reference, so a result that arrives after orders_status_free() finds it
 * marked freed and does nothing. Redis replies never outlive it:
 * bs_redis_free() answers the waiting ones (CANCELLED) before returning. */
#include "orders-status.h"

#include "orders-store.h"

#include "bs-error.h"
#include "bs-log.h"
#include "bs-stream.h"

#include <string.h>

#define READ_COUNT_N 100
#define READ_COUNT G_STRINGIFY (READ_COUNT_N)
#define BLOCK_MS 1000
#define RETRY_MS 1000
#define REASON_MAX_CHARS 500
#define EVENT_ID_MAX_CHARS 64

struct _OrdersStatus
{
  BsDbPool *pool;
  BsRedis *redis;
  char *consumer;
  char claim_idle[16];
  guint claim_idle_ms;
  guint claim_interval_ms;
  gboolean started;
  gboolean stopping;
  gboolean freed;
  gboolean busy;            /* a command or a batch is in flight */
  gboolean need_group;      /* XGROUP CREATE before reading */
  gboolean reading_pending; /* the read in flight is of our pending entries */
  gboolean claim_due;       /* look for entries to take over before the next read */
  gboolean consumers_due;   /* delete the consumers stopped processes of this host left */
  char *claim_cursor;       /* where the last XPENDING scan stopped: "-" or "(<id>" */
  char *pending_cursor;     /* re-reading our pending entries after this id; NULL: new ones */
  guint claim_id;
  guint retry_id;
  gboolean db_failing;  /* a failure was logged: log the recovery */
  struct _Batch *batch; /* being applied */
  OrdersStatusStoppedFunc stopped_func;
  gpointer stopped_data;

  BsMetricFamily *updates; /* orders_status_updates_total{result} */
  BsMetricFamily *redis_connected;
  gint connected; /* atomic: read by the other event loops' /health */
};

typedef struct
{
  char *id;           /* the stream entry id */
  GHashTable *fields; /* NULL: the entry was deleted from the stream */
  BsTrace trace;      /* its span, in the trace of its traceparent field (else a new one) */
} Entry;

typedef struct _Batch
{
  GPtrArray *entries; /* Entry */
  guint next;         /* the entry to apply next */
  GPtrArray *acks;    /* ids (borrowed from entries) the database answered for */
  gboolean from_pending;
  gboolean retry; /* the database failed: stop here, read the rest again later */
} Batch;

/* A valid status change, from an entry's fields. */
typedef struct
{
  char order_id[24];
  const char *status;
  char *reason;   /* with failed; may be NULL */
  char *event_id; /* may be NULL */
} Change;

static void step (OrdersStatus *self);
static void apply_next (OrdersStatus *self);

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_free (entry->id);
  g_clear_pointer (&entry->fields, g_hash_table_unref);
  g_free (entry);
}

static void
batch_free (Batch *batch)
{
  g_ptr_array_unref (batch->acks);
  g_ptr_array_unref (batch->entries);
  g_free (batch);
}

static void
change_clear (Change *change)
{
  g_clear_pointer (&change->reason, g_free);
  g_clear_pointer (&change->event_id, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Change, change_clear)

/* Drop a query's reference; TRUE when the consumer is gone (do nothing more). */
static gboolean
unref_is_gone (OrdersStatus *self)
{
  gboolean gone = self->freed;

  g_atomic_rc_box_release (self);
  return gone;
}

static void
count (OrdersStatus *self, const char *result)
{
  bs_metric_inc (self->updates, (const char *const[]){ result, NULL }, 1);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void
set_connected (BsRedis *redis, gboolean connected, gpointer user_data)
{
  OrdersStatus *self = user_data;

  bs_metric_set (self->redis_connected, (const char *const[]){ "orders-status", NULL },
                 connected ? 1 : 0);
  g_atomic_int_set (&self->connected, connected);
  if (!connected)
    return;
  /* Redis may have restarted empty, and entries may have been delivered to
   * us before the connection broke: make the group, re-read ours */
  self->need_group = TRUE;
  self->consumers_due = TRUE;
  g_free (self->pending_cursor);
  self->pending_cursor = g_strdup ("0");
  step (self);
}

OrdersStatus *
orders_status_new (BsDbPool *pool, const BsRedisOptions *redis_options, const char *consumer,
                   guint claim_idle_ms, BsMetrics *metrics, BsMetricFamily *redis_connected)
{
  static const char *const result_label[] = { "result", NULL };
  OrdersStatus *self = g_atomic_rc_box_new0 (OrdersStatus);
  BsRedisOptions options = *redis_options;

  options.name = "orders-status";
  self->pool = pool;
  self->redis = bs_redis_new (&options);
  self->consumer = g_strdup (consumer);
  g_snprintf (self->claim_idle, sizeof self->claim_idle, "%u", claim_idle_ms);
  self->claim_idle_ms = claim_idle_ms;
  self->claim_interval_ms = CLAMP (claim_idle_ms / 2, 500, 15000);
  self->claim_cursor = g_strdup ("-");
  bs_redis_set_state_func (self->redis, set_connected, self);

  self->updates = bs_metrics_counter (
      metrics, "orders_status_updates_total",
      "Status messages from the worker: applied, ignored (repeated or late), invalid "
      "(bad fields or unknown order)",
      result_label);
  for (const char *const *r = (const char *const[]){ "applied", "ignored", "invalid", NULL };
       *r != NULL; r++)
    bs_metric_inc (self->updates, (const char *const[]){ *r, NULL }, 0);
  self->redis_connected = redis_connected;
  bs_metric_set (redis_connected, (const char *const[]){ "orders-status", NULL }, 0);
  return self;
}

void
orders_status_free (OrdersStatus *self)
{
  if (self == NULL)
    return;
  self->freed = TRUE;
  g_atomic_int_set (&self->connected, FALSE);
  g_clear_handle_id (&self->claim_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_pointer (&self->redis, bs_redis_free); /* answers what waits: CANCELLED */
  g_clear_pointer (&self->batch, batch_free);
  g_clear_pointer (&self->consumer, g_free);
  g_clear_pointer (&self->claim_cursor, g_free);
  g_clear_pointer (&self->pending_cursor, g_free);
  g_atomic_rc_box_release (self);
}

gboolean
orders_status_is_connected (OrdersStatus *self)
{
  return g_atomic_int_get (&self->connected);
}

static gboolean
claim_tick (gpointer user_data)
{
  OrdersStatus *self = user_data;

  self->claim_due = TRUE;
  self->consumers_due = TRUE;
  step (self);
  return G_SOURCE_CONTINUE;
}

void
orders_status_start (OrdersStatus *self)
{
  g_return_if_fail (!self->started);
  self->started = TRUE;
  self->claim_id = g_timeout_add (self->claim_interval_ms, claim_tick, self);
  bs_redis_start (self->redis); /* set_connected() takes it from there */
}

gboolean
orders_status_stop (OrdersStatus *self, OrdersStatusStoppedFunc func, gpointer user_data)
{
  self->stopping = TRUE;
  g_clear_handle_id (&self->claim_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (!self->busy)
    return FALSE;
  self->stopped_func = func;
  self->stopped_data = user_data;
  return TRUE;
}

/* ---- the steps ----------------------------------------------------------------- */

static gboolean
retry_cb (gpointer user_data)
{
  OrdersStatus *self = user_data;

  self->retry_id = 0;
  step (self);
  return G_SOURCE_REMOVE;
}

/* A step is over: stop, wait a little (after a failure), or go on. */
static void
step_done (OrdersStatus *self, gboolean retry_later)
{
  self->busy = FALSE;
  if (self->stopping)
    {
      OrdersStatusStoppedFunc func = g_steal_pointer (&self->stopped_func);

      if (func != NULL)
        func (self->stopped_data);
      return;
    }
  if (retry_later)
    {
      if (self->retry_id == 0)
        self->retry_id = g_timeout_add (RETRY_MS, retry_cb, self);
      return;
    }
  step (self);
}

/* A command failed: CANCELLED means we are being freed. */
static void
command_failed (OrdersStatus *self, const char *what, const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->freed)
    return;
  if (g_error_matches (error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY)
      && g_str_has_prefix (error->message, "NOGROUP"))
    self->need_group = TRUE; /* the stream was deleted or Redis restarted empty */
  if (g_error_matches (error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY))
    g_warning ("status consumer: %s failed: %s; retrying", what, error->message);
  else
    g_debug ("status consumer: %s failed: %s", what, error->message); /* bs-redis logs outages */
  step_done (self, TRUE);
}

static void
group_created (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  OrdersStatus *self = user_data;

  if (error != NULL
      && !(g_error_matches (error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY)
           && g_str_has_prefix (error->message, "BUSYGROUP")))
    {
      command_failed (self, "creating the consumer group", error);
      return;
    }
  if (error == NULL)
    g_message ("status consumer: created consumer group %s on %s", ORDERS_STATUS_GROUP,
               ORDERS_STATUS_STREAM);
  self->need_group = FALSE;
  step_done (self, FALSE);
}

/* XCLAIM ... JUSTID: the ids now ours */
static void
claimed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  OrdersStatus *self = user_data;

  if (error != NULL)
    {
      command_failed (self, "taking over idle entries", error);
      return;
    }
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0)
    {
      g_message ("status consumer: took over %zu status entries left pending by other consumers",
                 reply->elements);
      g_free (self->pending_cursor);
      self->pending_cursor = g_strdup ("0"); /* they are ours now: read them */
    }
  step_done (self, FALSE);
}

/* XPENDING ... IDLE: [[id, consumer, idle ms, deliveries], ...]. Entries of
 * other consumers idle that long are claimed; ours (idle while the database
 * is away) are re-read anyway. Scans a page per tick. */
static void
pending_listed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  OrdersStatus *self = user_data;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *last = NULL;
  guint n_fixed;

  if (error != NULL)
    {
      command_failed (self, "listing idle entries", error);
      return;
    }
  self->claim_due = FALSE;
  for (const char *const *a
       = (const char *const[]){ "XCLAIM", ORDERS_STATUS_STREAM, ORDERS_STATUS_GROUP, self->consumer,
                                self->claim_idle, NULL };
       *a != NULL; a++)
    g_ptr_array_add (argv, g_strdup (*a));
  n_fixed = argv->len;
  for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
    {
      const redisReply *e = reply->element[i];
      const char *id = e->type == REDIS_REPLY_ARRAY && e->elements >= 2
                           ? bs_redis_reply_str (e->element[0])
                           : NULL;
      const char *owner = id != NULL ? bs_redis_reply_str (e->element[1]) : NULL;

      if (id == NULL || owner == NULL)
        continue;
      last = id;
      if (!g_str_equal (owner, self->consumer))
        g_ptr_array_add (argv, g_strdup (id));
    }
  g_free (self->claim_cursor);
  /* a full page: the next tick goes on after it; else from the start again */
  self->claim_cursor = last != NULL && reply->elements >= READ_COUNT_N
                           ? g_strconcat ("(", last, NULL)
                           : g_strdup ("-");
  if (argv->len == n_fixed)
    {
      step_done (self, FALSE);
      return;
    }
  g_ptr_array_add (argv, g_strdup ("JUSTID"));
  bs_redis_command_argv (self->redis, 0, (int) argv->len, (const char **) argv->pdata, NULL,
                         claimed, self);
}

/* Each restart of a process without ORDERS_CONSUMER_NAME is a new consumer
 * <hostname>-<pid>: the ones of processes of this host that are gone, idle
 * past the claim time and with nothing pending (what they held was claimed
 * above) are deleted, so that restarts do not pile them up. */
static void
consumers_deleted (const char *const *deleted, const GError *error, gpointer user_data)
{
  OrdersStatus *self = user_data;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->freed)
    return;
  self->consumers_due = FALSE;
  if (deleted[0] != NULL)
    {
      g_autofree char *names = g_strjoinv (", ", (char **) deleted);

      g_message ("status consumer: deleted %u consumers of stopped processes of this host from "
                 "group %s: %s",
                 g_strv_length ((char **) deleted), ORDERS_STATUS_GROUP, names);
    }
  if (error != NULL) /* not worth a retry loop: the next claim tick tries again */
    g_debug ("status consumer: deleting stopped consumers failed: %s", error->message);
  step_done (self, FALSE);
}

/* ---- reading and applying ----------------------------------------------------- */

/* The entries of an XREADGROUP reply: [[stream, [entry, ...]]], or NIL. */
static Batch *
batch_from_reply (const redisReply *reply)
{
  Batch *batch = g_new0 (Batch, 1);
  const redisReply *entries;

  batch->entries = g_ptr_array_new_with_free_func (entry_free);
  batch->acks = g_ptr_array_new ();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
      || reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements != 2
      || reply->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
    return batch;
  entries = reply->element[0]->element[1];
  for (size_t i = 0; i < entries->elements; i++)
    {
      const redisReply *e = entries->element[i];
      Entry *entry = g_new0 (Entry, 1);

      entry->fields = bs_redis_entry_fields (e, &entry->id);
      /* a deleted entry still pending reads as [id, nil] */
      if (entry->fields == NULL && e->type == REDIS_REPLY_ARRAY && e->elements >= 1
          && e->element[0]->type == REDIS_REPLY_STRING)
        entry->id = g_strdup (e->element[0]->str);
      if (entry->id == NULL)
        {
          entry_free (entry);
          continue; /* no id: nothing we could even acknowledge */
        }
      /* a span in the trace of the worker's job that sent the entry */
      bs_trace_start (&entry->trace, entry->fields != NULL
                                         ? g_hash_table_lookup (entry->fields, "traceparent")
                                         : NULL);
      g_ptr_array_add (batch->entries, entry);
    }
  return batch;
}

static void
acked (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  OrdersStatus *self = user_data;
  Batch *batch;
  gboolean retry;

  if (self->freed || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (error != NULL) /* read again below, and ignored as repeated */
    g_debug ("status consumer: XACK failed: %s", error->message);
  batch = g_steal_pointer (&self->batch);
  retry = batch->retry;
  if (retry || error != NULL)
    {
      g_free (self->pending_cursor);
      self->pending_cursor = g_strdup ("0");
    }
  else if (batch->from_pending)
    {
      g_free (self->pending_cursor);
      /* a short batch was the last of our pending entries: on to new ones */
      self->pending_cursor
          = batch->entries->len < READ_COUNT_N
                ? NULL
                : g_strdup (
                    ((Entry *) g_ptr_array_index (batch->entries, batch->entries->len - 1))->id);
    }
  batch_free (batch);
  step_done (self, retry);
}

/* Every entry the database answered for, in one XACK. */
static void
ack_batch (OrdersStatus *self)
{
  Batch *batch = self->batch;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, (gpointer) "XACK");
  g_ptr_array_add (argv, (gpointer) ORDERS_STATUS_STREAM);
  g_ptr_array_add (argv, (gpointer) ORDERS_STATUS_GROUP);
  for (guint i = 0; i < batch->acks->len; i++)
    g_ptr_array_add (argv, g_ptr_array_index (batch->acks, i));
  if (batch->acks->len == 0)
    {
      acked (self->redis, NULL, NULL, self);
      return;
    }
  bs_redis_command_argv (self->redis, 0, (int) argv->len, (const char **) argv->pdata, NULL, acked,
                         self);
}

/* A record about @entry, in its span. */
static void entry_log (const Entry *entry, GLogLevelFlags level, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
entry_log (const Entry *entry, GLogLevelFlags level, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;
  GLogField fields[] = {
    { "PRIORITY", bs_log_priority (level), -1 },
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    BS_TRACE_LOG_FIELDS (&entry->trace),
    { "REDIS_STREAM", ORDERS_STATUS_STREAM, -1 },
    { "REDIS_ENTRY_ID", entry->id, -1 },
    { "MESSAGE", NULL, -1 }, /* last: journald drops fields after it */
  };

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  fields[G_N_ELEMENTS (fields) - 1].value = message;
  bs_log_fields (level, fields, G_N_ELEMENTS (fields));
}

static void
log_invalid (const Entry *entry, const char *why)
{
  entry_log (entry, G_LOG_LEVEL_WARNING, "status entry %s is invalid; acknowledged: %s", entry->id,
             why);
}

/* Valid UTF-8 of at most @max_chars characters, or NULL. */
static char *
clean_text (const char *value, glong max_chars)
{
  g_autofree char *valid = NULL;

  if (value == NULL || value[0] == '\0')
    return NULL;
  valid = g_utf8_make_valid (value, -1);
  if (g_utf8_strlen (valid, -1) <= max_chars)
    return g_steal_pointer (&valid);
  return g_utf8_substring (valid, 0, max_chars);
}

static gboolean
parse_change (const Entry *entry, Change *change, char **why)
{
  static const char *const statuses[] = { "processing", "completed", "failed", NULL };
  const char *order_id, *status;
  guint64 id = 0;

  if (entry->fields == NULL)
    {
      *why = g_strdup ("the entry has no fields (deleted)");
      return FALSE;
    }
  order_id = g_hash_table_lookup (entry->fields, "order_id");
  status = g_hash_table_lookup (entry->fields, "status");
  if (order_id == NULL || !g_ascii_string_to_unsigned (order_id, 10, 1, G_MAXINT64, &id, NULL))
    {
      g_autofree char *shown = clean_text (order_id, 64);

      *why = order_id == NULL ? g_strdup ("no order_id")
                              : g_strdup_printf ("order_id \"%s\" is not a positive integer",
                                                 shown != NULL ? shown : "");
      return FALSE;
    }
  for (const char *const *s = statuses; *s != NULL; s++)
    if (status != NULL && g_str_equal (status, *s))
      change->status = *s;
  if (change->status == NULL)
    {
      g_autofree char *shown = clean_text (status, 64);

      *why = status == NULL ? g_strdup ("no status")
                            : g_strdup_printf ("unknown status \"%s\"", shown != NULL ? shown : "");
      return FALSE;
    }
  g_snprintf (change->order_id, sizeof change->order_id, "%" G_GUINT64_FORMAT, id);
  if (g_str_equal (change->status, "failed"))
    change->reason = clean_text (g_hash_table_lookup (entry->fields, "reason"), REASON_MAX_CHARS);
  change->event_id
      = clean_text (g_hash_table_lookup (entry->fields, "event_id"), EVENT_ID_MAX_CHARS);
  return TRUE;
}

/* The database is away, slow, or busy: try the entry again later. */
static gboolean
is_transient (const GError *error)
{
  if (error->domain != BS_ERROR)
    return TRUE;
  switch (error->code)
    {
      case BS_ERROR_UNAVAILABLE:
      case BS_ERROR_TIMEOUT:
      case BS_ERROR_RETRY:
      case BS_ERROR_INTERNAL:
        return TRUE;
      default:
        return FALSE;
    }
}

static void
log_applied (const Entry *entry, const char *order_id, const char *status, const char *before)
{
  g_autofree char *message = g_strdup_printf ("order %s now %s (was %s)", order_id, status, before);
  GLogField fields[] = {
    { "PRIORITY", "6", -1 }, /* info */
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    BS_TRACE_LOG_FIELDS (&entry->trace),
    { "ORDER_ID", order_id, -1 },
    { "ORDER_STATUS", status, -1 },
    { "REDIS_ENTRY_ID", entry->id, -1 },
    { "MESSAGE", message, -1 }, /* last: journald drops fields after it */
  };

  bs_log_fields (G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS (fields));
}

static void
report_result (OrdersStatus *self, const Entry *entry, const PGresult *res)
{
  const char *order_id = g_hash_table_lookup (entry->fields, "order_id");
  const char *status = g_hash_table_lookup (entry->fields, "status");
  const char *before = PQgetisnull (res, 0, 1) ? NULL : PQgetvalue (res, 0, 1);

  if (g_str_equal (PQgetvalue (res, 0, 0), "t"))
    {
      count (self, "applied");
      log_applied (entry, order_id, status, before);
    }
  else if (before == NULL)
    {
      g_autofree char *why = g_strdup_printf ("order %s does not exist", order_id);

      count (self, "invalid");
      log_invalid (entry, why);
    }
  else
    {
      count (self, "ignored");
      entry_log (entry, G_LOG_LEVEL_DEBUG, "status entry %s: order %s is %s already: %s ignored",
                 entry->id, order_id, before, status);
    }
}

static void
applied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OrdersStatus *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) res = NULL;
  Batch *batch;
  Entry *entry;

  if (unref_is_gone (self))
    return;
  res = bs_db_pool_query_finish (self->pool, result, &error);
  batch = self->batch;
  entry = g_ptr_array_index (batch->entries, batch->next);
  if (res == NULL && is_transient (error))
    {
      if (!self->db_failing)
        entry_log (entry, G_LOG_LEVEL_WARNING,
                   "status consumer: cannot apply status entry %s: %s; it stays pending and is "
                   "read again",
                   entry->id, error->message);
      self->db_failing = TRUE;
      batch->retry = TRUE;
      ack_batch (self); /* what was done before it */
      return;
    }
  if (self->db_failing)
    g_message ("status consumer: the database answers again");
  self->db_failing = FALSE;
  if (res == NULL)
    {
      count (self, "invalid");
      log_invalid (entry, error->message);
    }
  else
    report_result (self, entry, res);
  g_ptr_array_add (batch->acks, entry->id);
  batch->next++;
  apply_next (self);
}

/* Invalid entries are acknowledged on the spot; the next valid one goes to
 * the database, and its answer continues the batch. */
static void
apply_next (OrdersStatus *self)
{
  Batch *batch = self->batch;

  while (batch->next < batch->entries->len)
    {
      Entry *entry = g_ptr_array_index (batch->entries, batch->next);
      g_auto (Change) change = { { 0 } };
      g_autofree char *why = NULL;

      if (!parse_change (entry, &change, &why))
        {
          count (self, "invalid");
          log_invalid (entry, why);
          g_ptr_array_add (batch->acks, entry->id);
          batch->next++;
          continue;
        }
      g_atomic_rc_box_acquire (self); /* released by applied() */
      bs_db_pool_query_async (self->pool, ORDERS_SQL_APPLY_STATUS,
                              (const char *const[]){ change.order_id, change.status, change.reason,
                                                     change.event_id, entry->id },
                              5, 0, NULL, applied, self);
      return;
    }
  ack_batch (self);
}

static void
read_done (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  OrdersStatus *self = user_data;

  if (error != NULL)
    {
      command_failed (self, "reading status entries", error);
      return;
    }
  self->batch = batch_from_reply (reply); /* NIL: a BLOCK that timed out */
  self->batch->from_pending = self->reading_pending;
  apply_next (self);
}

static void
read_entries (OrdersStatus *self)
{
  self->reading_pending = self->pending_cursor != NULL;
  if (self->reading_pending)
    bs_redis_command (self->redis, 0, read_done, self, "XREADGROUP", "GROUP", ORDERS_STATUS_GROUP,
                      self->consumer, "COUNT", READ_COUNT, "STREAMS", ORDERS_STATUS_STREAM,
                      self->pending_cursor, NULL);
  else
    bs_redis_command (self->redis, BLOCK_MS, read_done, self, "XREADGROUP", "GROUP",
                      ORDERS_STATUS_GROUP, self->consumer, "COUNT", READ_COUNT, "BLOCK",
                      G_STRINGIFY (BLOCK_MS), "STREAMS", ORDERS_STATUS_STREAM, ">", NULL);
}

/* The next thing to do, unless something is in flight or we wait. */
static void
step (OrdersStatus *self)
{
  if (self->busy || self->freed || !self->started)
    return;
  if (self->stopping)
    {
      step_done (self, FALSE);
      return;
    }
  if (self->retry_id != 0 || !bs_redis_is_connected (self->redis))
    return; /* the retry timer or the next connect steps again */
  self->busy = TRUE;
  /* the group starts at 0, not $: what the worker published before the
   * group existed is applied too (applying an old entry again is harmless) */
  if (self->need_group)
    bs_redis_command (self->redis, 0, group_created, self, "XGROUP", "CREATE", ORDERS_STATUS_STREAM,
                      ORDERS_STATUS_GROUP, "0", "MKSTREAM", NULL);
  else if (self->claim_due)
    bs_redis_command (self->redis, 0, pending_listed, self, "XPENDING", ORDERS_STATUS_STREAM,
                      ORDERS_STATUS_GROUP, "IDLE", self->claim_idle, self->claim_cursor, "+",
                      READ_COUNT, NULL);
  else if (self->consumers_due)
    bs_stream_delete_dead_consumers (self->redis, ORDERS_STATUS_STREAM, ORDERS_STATUS_GROUP,
                                     self->consumer, self->claim_idle_ms, consumers_deleted, self);
  else
    read_entries (self);
}
