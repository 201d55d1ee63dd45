/* orders-relay.c: one run at a time: take the oldest unsent outbox rows
 * (held for a lease, so that another instance's relay skips them), XADD
 * them all at once (pipelined: Redis answers in order), mark the ones Redis
 * accepted as sent and release the others, and on timer runs refresh the
 * outbox gauges.
 *
 * Lifetime: the relay is reference counted; each database query holds a
 * reference, so a result that arrives after orders_relay_free() finds it
 * marked freed and does nothing. Redis replies never outlive it:
 * bs_redis_free() answers the waiting ones (CANCELLED) before returning. */
#include "orders-relay.h"

#include "orders-store.h"

#include "bs-error.h"
#include "bs-loop.h"

#define BATCH_SIZE 100
/* How long a fetched batch is ours: far longer than publishing it takes
 * (the Redis command timeout is 5 s); after a crash, its rows wait that long. */
#define LEASE_S 10

struct _OrdersRelay
{
  BsDbPool *pool;
  BsRedis *redis;
  guint interval_ms;
  guint timer_id;
  guint kick_id;
  gboolean started;
  gboolean stopping;
  gboolean freed;
  gboolean busy;       /* a run is in flight */
  gboolean again;      /* asked to run while busy: run once more at the end */
  gboolean stats_due;  /* the next run refreshes the gauges */
  gboolean run_stats;  /* this run does */
  gboolean db_failing; /* a failure was logged: log the recovery */
  gboolean publish_failing;
  OrdersRelayStoppedFunc stopped_func;
  gpointer stopped_data;

  BsMetricFamily *pending;
  BsMetricFamily *oldest;
  BsMetricFamily *published;
  BsMetricFamily *failures;
  BsMetricFamily *redis_connected;
  gint connected;           /* atomic: read by the other event loops' /health */
  gint remote_kick_pending; /* atomic: a kick from another loop is on its way */
};

typedef struct _Batch Batch;

/* One XADD of a batch: its reply says whether the row went out. */
typedef struct
{
  Batch *batch;
  gint64 outbox_id;
} Xadd;

/* One batch being published. */
struct _Batch
{
  OrdersRelay *relay;
  Xadd *xadds;
  guint n_rows;
  guint waiting;   /* XADD replies still to come */
  GString *sent;   /* "{id,id,...}" of the rows Redis accepted */
  GString *unsent; /* the others: released for the next run */
  guint n_sent;
  guint n_failed;
  char *first_error;
};

static void run (OrdersRelay *relay);
static void publish_rows (OrdersRelay *relay, const PGresult *res);

static void
batch_free (Batch *batch)
{
  g_free (batch->xadds);
  g_string_free (batch->sent, TRUE);
  g_string_free (batch->unsent, TRUE);
  g_free (batch->first_error);
  g_free (batch);
}

static OrdersRelay *
relay_ref (OrdersRelay *relay)
{
  return g_atomic_rc_box_acquire (relay);
}

/* Drop a query's reference; TRUE when the relay is gone (do nothing more). */
static gboolean
relay_unref_is_gone (OrdersRelay *relay)
{
  gboolean gone = relay->freed;

  g_atomic_rc_box_release (relay);
  return gone;
}

static void
set_connected (BsRedis *redis, gboolean connected, gpointer user_data)
{
  OrdersRelay *relay = user_data;

  bs_metric_set (relay->redis_connected, (const char *const[]){ "orders-relay", NULL },
                 connected ? 1 : 0);
  g_atomic_int_set (&relay->connected, connected);
  if (connected)
    orders_relay_kick (relay); /* what waited during the outage goes now */
}

OrdersRelay *
orders_relay_new (BsDbPool *pool, const BsRedisOptions *redis_options, guint interval_ms,
                  BsMetrics *metrics, BsMetricFamily *redis_connected)
{
  OrdersRelay *relay = g_atomic_rc_box_new0 (OrdersRelay);
  BsRedisOptions options = *redis_options;

  options.name = "orders-relay";
  relay->pool = pool;
  relay->redis = bs_redis_new (&options);
  relay->interval_ms = interval_ms;
  relay->stats_due = TRUE;
  bs_redis_set_state_func (relay->redis, set_connected, relay);

  relay->pending = bs_metrics_gauge (metrics, "orders_outbox_pending",
                                     "Order events not yet published to Redis", NULL);
  relay->oldest
      = bs_metrics_gauge (metrics, "orders_outbox_oldest_pending_seconds",
                          "Age of the oldest order event not yet published (0 when none)", NULL);
  relay->published = bs_metrics_counter (metrics, "orders_outbox_published_total",
                                         "Order events published to Redis", NULL);
  relay->failures = bs_metrics_counter (
      metrics, "orders_outbox_publish_failures_total",
      "Order events Redis did not accept (connection lost, error): published later", NULL);
  relay->redis_connected = redis_connected;
  bs_metric_set (redis_connected, (const char *const[]){ "orders-relay", NULL }, 0);
  return relay;
}

void
orders_relay_free (OrdersRelay *relay)
{
  if (relay == NULL)
    return;
  relay->freed = TRUE;
  g_atomic_int_set (&relay->connected, FALSE);
  g_clear_handle_id (&relay->timer_id, g_source_remove);
  g_clear_handle_id (&relay->kick_id, g_source_remove);
  g_clear_pointer (&relay->redis, bs_redis_free); /* answers pending XADDs: CANCELLED */
  g_atomic_rc_box_release (relay);
}

gboolean
orders_relay_is_connected (OrdersRelay *relay)
{
  return g_atomic_int_get (&relay->connected);
}

BsRedis *
orders_relay_get_redis (OrdersRelay *relay)
{
  return relay->redis;
}

/* ---- one run ------------------------------------------------------------------ */

static void
db_failed (OrdersRelay *relay, const char *what, const GError *error)
{
  if (!relay->db_failing)
    g_warning ("outbox relay: %s failed: %s; retrying", what, error->message);
  relay->db_failing = TRUE;
}

static void
db_answered (OrdersRelay *relay)
{
  if (relay->db_failing)
    g_message ("outbox relay: the database answers again");
  relay->db_failing = FALSE;
}

static void
run_done (OrdersRelay *relay)
{
  relay->busy = FALSE;
  if (relay->stopping)
    {
      OrdersRelayStoppedFunc func = g_steal_pointer (&relay->stopped_func);

      if (func != NULL)
        func (relay->stopped_data);
      return;
    }
  if (relay->again)
    {
      relay->again = FALSE;
      run (relay);
    }
}

static void
stats_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OrdersRelay *relay = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) res = NULL;

  if (relay_unref_is_gone (relay))
    return;
  res = bs_db_pool_query_finish (relay->pool, result, &error);
  if (res == NULL)
    db_failed (relay, "counting the unsent events", error);
  else
    {
      db_answered (relay);
      bs_metric_set (relay->pending, NULL, g_ascii_strtod (PQgetvalue (res, 0, 0), NULL));
      bs_metric_set (relay->oldest, NULL, g_ascii_strtod (PQgetvalue (res, 0, 1), NULL));
    }
  run_done (relay);
}

/* The end of a run: the gauges on timer runs, after publishing so they
 * show what is left. */
static void
finish_run (OrdersRelay *relay)
{
  if (!relay->run_stats || relay->freed)
    {
      run_done (relay);
      return;
    }
  bs_db_pool_query_async (relay->pool, ORDERS_SQL_OUTBOX_STATS, NULL, 0, 0, NULL, stats_done,
                          relay_ref (relay));
}

static void
marked_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Batch *batch = user_data;
  OrdersRelay *relay = batch->relay;
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) res = NULL;

  if (relay_unref_is_gone (relay))
    {
      batch_free (batch);
      return;
    }
  res = bs_db_pool_query_finish (relay->pool, result, &error);
  if (res == NULL)
    db_failed (relay, "marking events sent (they will be published again)", error);
  else
    {
      db_answered (relay);
      /* a full batch published in full: more rows are likely waiting */
      if (batch->n_rows == BATCH_SIZE && batch->n_failed == 0)
        relay->again = TRUE;
    }
  batch_free (batch);
  finish_run (relay);
}

static void
mark_sent (Batch *batch)
{
  OrdersRelay *relay = batch->relay;
  const char *sent, *unsent;

  if (batch->n_failed > 0)
    {
      bs_metric_inc (relay->failures, NULL, batch->n_failed);
      if (!relay->publish_failing)
        g_warning ("outbox relay: %u of %u events not published: %s; retrying", batch->n_failed,
                   batch->n_rows, batch->first_error);
      relay->publish_failing = TRUE;
    }
  else if (relay->publish_failing)
    {
      g_message ("outbox relay: publishing again");
      relay->publish_failing = FALSE;
    }
  g_string_append_c (batch->sent, '}');
  g_string_append_c (batch->unsent, '}');
  sent = batch->sent->str; /* copied when the query is queued */
  unsent = batch->unsent->str;
  relay_ref (relay); /* released by marked_sent */
  bs_db_pool_query_async (relay->pool, ORDERS_SQL_OUTBOX_MARK_SENT,
                          (const char *const[]){ sent, unsent }, 2, 0, NULL, marked_sent, batch);
}

static void
xadd_replied (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Xadd *xadd = user_data;
  Batch *batch = xadd->batch;

  if (reply != NULL)
    {
      g_string_append_printf (batch->sent, "%s%" G_GINT64_FORMAT, batch->n_sent > 0 ? "," : "",
                              xadd->outbox_id);
      batch->n_sent++;
      bs_metric_inc (batch->relay->published, NULL, 1);
    }
  else
    {
      g_string_append_printf (batch->unsent, "%s%" G_GINT64_FORMAT, batch->n_failed > 0 ? "," : "",
                              xadd->outbox_id);
      batch->n_failed++;
      if (batch->first_error == NULL)
        batch->first_error = g_strdup (error->message);
    }
  if (--batch->waiting > 0)
    return;
  if (batch->relay->freed)
    batch_free (batch); /* the rows Redis took are published again later */
  else
    mark_sent (batch);
}

/* XADD every row at once; the replies come back in order. */
static void
publish_rows (OrdersRelay *relay, const PGresult *res)
{
  Batch *batch = g_new0 (Batch, 1);
  int n = PQntuples (res);

  batch->relay = relay;
  batch->n_rows = n;
  batch->waiting = n;
  batch->xadds = g_new0 (Xadd, n);
  batch->sent = g_string_new ("{");
  batch->unsent = g_string_new ("{");
  for (int row = 0; row < n; row++)
    {
      const char *argv[3 + 2 * ORDERS_OUTBOX_N_COLS];
      static const char *const names[ORDERS_OUTBOX_N_COLS]
          = { "outbox_id", "type",       "order_id",    "book_id",    "book_title",  "book_author",
              "quantity",  "unit_price", "total_price", "created_at", "traceparent", "tracestate" };
      int argc = 0;

      argv[argc++] = "XADD";
      argv[argc++] = ORDERS_EVENTS_STREAM;
      argv[argc++] = "*";
      /* the field order of docs/events.md: type first */
      argv[argc++] = names[ORDERS_OUTBOX_COL_TYPE];
      argv[argc++] = PQgetvalue (res, row, ORDERS_OUTBOX_COL_TYPE);
      for (int col = 0; col < ORDERS_OUTBOX_N_COLS; col++)
        if (col != ORDERS_OUTBOX_COL_TYPE
            /* no trace context (an event from before it was kept): no field */
            && !(col >= ORDERS_OUTBOX_COL_TRACEPARENT && PQgetisnull (res, row, col)))
          {
            argv[argc++] = names[col];
            argv[argc++] = PQgetvalue (res, row, col);
          }
      batch->xadds[row].batch = batch;
      batch->xadds[row].outbox_id
          = g_ascii_strtoll (PQgetvalue (res, row, ORDERS_OUTBOX_COL_ID), NULL, 10);
      bs_redis_command_argv (relay->redis, 0, argc, argv, NULL, xadd_replied, &batch->xadds[row]);
    }
}

static void
fetched (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OrdersRelay *relay = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) res = NULL;

  if (relay_unref_is_gone (relay))
    return;
  res = bs_db_pool_query_finish (relay->pool, result, &error);
  if (res == NULL)
    {
      db_failed (relay, "reading the outbox", error);
      finish_run (relay);
      return;
    }
  db_answered (relay);
  if (PQntuples (res) == 0)
    {
      finish_run (relay);
      return;
    }
  publish_rows (relay, res); /* Redis gone meanwhile: the XADDs fail, the rows are released */
}

static void
run (OrdersRelay *relay)
{
  char limit[16], lease[16];

  if (relay->busy)
    {
      relay->again = TRUE;
      return;
    }
  relay->busy = TRUE;
  relay->run_stats = relay->stats_due;
  relay->stats_due = FALSE;
  if (!bs_redis_is_connected (relay->redis))
    {
      finish_run (relay); /* nothing can go out; the gauges still count */
      return;
    }
  g_snprintf (limit, sizeof limit, "%d", BATCH_SIZE);
  g_snprintf (lease, sizeof lease, "%d", LEASE_S);
  bs_db_pool_query_async (relay->pool, ORDERS_SQL_OUTBOX_BATCH,
                          (const char *const[]){ limit, lease }, 2, 0, NULL, fetched,
                          relay_ref (relay));
}

/* ---- triggers ---------------------------------------------------------------- */

static gboolean
tick (gpointer user_data)
{
  OrdersRelay *relay = user_data;

  relay->stats_due = TRUE;
  run (relay);
  return G_SOURCE_CONTINUE;
}

static gboolean
kick_cb (gpointer user_data)
{
  OrdersRelay *relay = user_data;

  relay->kick_id = 0;
  run (relay);
  return G_SOURCE_REMOVE;
}

static gboolean
remote_kick_cb (gpointer user_data)
{
  OrdersRelay *relay = user_data;

  g_atomic_int_set (&relay->remote_kick_pending, FALSE);
  orders_relay_kick (relay);
  return G_SOURCE_REMOVE;
}

static void
relay_release (gpointer relay)
{
  g_atomic_rc_box_release (relay);
}

void
orders_relay_kick (OrdersRelay *relay)
{
  /* from another event loop: over to the relay's, the main one, once at a time */
  if (!g_main_context_is_owner (g_main_context_default ()))
    {
      if (g_atomic_int_compare_and_exchange (&relay->remote_kick_pending, FALSE, TRUE))
        bs_invoke_on (NULL, remote_kick_cb, relay_ref (relay), relay_release);
      return;
    }
  if (!relay->started || relay->stopping || relay->freed)
    return;
  if (relay->busy)
    relay->again = TRUE;
  else if (relay->kick_id == 0)
    relay->kick_id = g_idle_add (kick_cb, relay); /* after the reply that kicked us */
}

void
orders_relay_start (OrdersRelay *relay)
{
  g_return_if_fail (!relay->started);
  relay->started = TRUE;
  bs_redis_start (relay->redis);
  relay->timer_id = g_timeout_add (relay->interval_ms, tick, relay);
  tick (relay);
}

gboolean
orders_relay_stop (OrdersRelay *relay, OrdersRelayStoppedFunc func, gpointer user_data)
{
  relay->stopping = TRUE;
  relay->again = FALSE;
  g_clear_handle_id (&relay->timer_id, g_source_remove);
  g_clear_handle_id (&relay->kick_id, g_source_remove);
  if (!relay->busy)
    return FALSE;
  relay->stopped_func = func;
  relay->stopped_data = user_data;
  return TRUE;
}
