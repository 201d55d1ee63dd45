/* bs-db-pool.c: the pool's options and public API (bs-db.h): creating it
 * and its metrics, starting it, queries and pings handed to it. */
#include "bs-db-private.h"

#include "bs-config.h"
#include "bs-db-hosts.h"
#include "bs-error.h"
#include "bs-loop.h"
#include "bs-request.h"

#include <string.h>

static const char *const conn_state_names[] = { "down", "connecting", "preparing", "idle", "busy" };

void
bs_db_options_init_default (BsDbOptions *options)
{
  options->size = 4;
  options->query_timeout_ms = 5000;
  options->max_waiting = 1024;
  options->pipeline_depth = 32;
  options->application_name = "bookstore";
  options->metrics_prefix = "db";
  options->reads_only = FALSE;
}

gboolean
bs_db_options_from_env (const char *prefix, BsDbOptions *options, guint *pool_size, GError **error)
{
  g_autofree char *size_name = g_strconcat (prefix, "_DB_POOL_SIZE", NULL);
  g_autofree char *timeout_name = g_strconcat (prefix, "_DB_TIMEOUT_MS", NULL);
  g_autofree char *waiting_name = g_strconcat (prefix, "_DB_MAX_WAITING", NULL);
  g_autofree char *depth_name = g_strconcat (prefix, "_DB_PIPELINE_DEPTH", NULL);

  return bs_config_get_uint (size_name, options->size, 1, 64, pool_size, error)
         && bs_config_get_uint (timeout_name, options->query_timeout_ms, 100, 600000,
                                &options->query_timeout_ms, error)
         && bs_config_get_uint (waiting_name, options->max_waiting, 1, 1000000,
                                &options->max_waiting, error)
         && bs_config_get_uint (depth_name, options->pipeline_depth, 1, 1024,
                                &options->pipeline_depth, error);
}

guint
bs_db_pool_share (guint pool_size, guint index, guint n_loops)
{
  return MAX (pool_size / n_loops + (index < pool_size % n_loops ? 1 : 0), 1);
}

void
bs_db_connect_params_init (BsDbConnectParams *params, const char *dsn, const char *application_name,
                           const char *host, const char *hostaddr, const char *port)
{
  static const char *const keywords[] = { "keepalives",
                                          "keepalives_idle",
                                          "keepalives_interval",
                                          "keepalives_count",
                                          "tcp_user_timeout",
                                          "connect_timeout",
                                          "gssencmode",
                                          "application_name",
                                          "dbname",
                                          "host",
                                          "hostaddr",
                                          "port",
                                          NULL };
  const char *values[] = { "1", "10", "3",      "3",  "9000", "5", "disable", application_name,
                           dsn, host, hostaddr, port, NULL };
  gsize n = 0;

  G_STATIC_ASSERT (G_N_ELEMENTS (keywords) <= G_N_ELEMENTS (params->keywords));
  for (gsize i = 0; keywords[i] != NULL; i++)
    {
      /* host and hostaddr go together; port only with them */
      if (i >= 9 && (hostaddr == NULL || values[i] == NULL))
        continue;
      params->keywords[n] = keywords[i];
      params->values[n] = values[i];
      n++;
    }
  params->keywords[n] = NULL;
  params->values[n] = NULL;
}

/* ---- public API --------------------------------------------------------- */

static void
collect_metrics (BsMetrics *metrics, gpointer user_data)
{
  BsDbPool *pool = user_data;

  for (guint s = 0; s < N_CONN_STATES; s++)
    bs_metric_set (pool->connections_gauge, (const char *const[]){ conn_state_names[s], NULL },
                   g_atomic_int_get (&pool->state_counts[s]));
  bs_metric_set (pool->waiting_gauge, NULL, g_atomic_int_get (&pool->n_waiting));
}

/* The DSN's target_session_attrs, as WANTS_*. A pool that writes, on a DSN
 * of several hosts, without target_session_attrs choosing the primary: after
 * a switchover it may stay on the standby, every write refused. Said once
 * per process. */
static int
dsn_wants (const char *dsn, gboolean writer)
{
  static gsize warned = 0;
  PQconninfoOption *options = PQconninfoParse (dsn, NULL);
  const char *host = NULL, *hostaddr = NULL, *tsa = NULL;
  int wants;

  if (options == NULL)
    return WANTS_ANY;
  for (PQconninfoOption *o = options; o->keyword != NULL; o++)
    {
      if (g_str_equal (o->keyword, "host"))
        host = o->val;
      else if (g_str_equal (o->keyword, "hostaddr"))
        hostaddr = o->val;
      else if (g_str_equal (o->keyword, "target_session_attrs"))
        tsa = o->val;
    }
  tsa = tsa != NULL ? tsa : g_getenv ("PGTARGETSESSIONATTRS");
  wants = g_strcmp0 (tsa, "read-write") == 0 ? WANTS_READ_WRITE
          : g_strcmp0 (tsa, "primary") == 0  ? WANTS_PRIMARY
                                             : WANTS_ANY;
  if (writer && wants == WANTS_ANY
      && ((host != NULL && strchr (host, ',') != NULL)
          || (hostaddr != NULL && strchr (hostaddr, ',') != NULL))
      && g_once_init_enter (&warned))
    {
      g_warning ("the database connection string lists several hosts without "
                 "target_session_attrs=read-write: after a switchover writes may go to a standby "
                 "(and fail); add it");
      g_once_init_leave (&warned, 1);
    }
  PQconninfoFree (options);
  return wants;
}

BsDbPool *
bs_db_pool_new (const char *dsn, const BsDbStatement *statements, const BsDbOptions *options,
                BsMetrics *metrics)
{
  BsDbPool *pool = g_new0 (BsDbPool, 1);
  g_autoptr (BsDbHosts) hosts = NULL;
  BsMetricFamily *max_conns;
  const char *prefix;

  static const BsDbStatement ping = { "bs_ping", "SELECT 1", TRUE };
  static const BsDbStatement end = { NULL, NULL };

  if (options != NULL)
    pool->options = *options;
  else
    bs_db_options_init_default (&pool->options);
  pool->dsn = g_strdup (dsn);
  hosts = bs_db_hosts_new (dsn);
  pool->resolve = hosts != NULL;
  pool->wants = dsn_wants (dsn, !pool->options.reads_only);
  pool->statements = g_array_new (FALSE, FALSE, sizeof (BsDbStatement));
  for (const BsDbStatement *st = statements; st != NULL && st->name != NULL; st++)
    if (st->read_only || !pool->options.reads_only)
      g_array_append_val (pool->statements, *st);
  g_array_append_val (pool->statements, ping);
  g_array_append_val (pool->statements, end);
  pool->options.size = MAX (pool->options.size, 1);
  pool->options.pipeline_depth = MAX (pool->options.pipeline_depth, 1);
  pool->application_name = g_strdup (
      pool->options.application_name != NULL ? pool->options.application_name : "bookstore");
  pool->conns = g_new0 (Conn, pool->options.size);
  for (guint i = 0; i < pool->options.size; i++)
    {
      pool->conns[i].pool = pool;
      pool->conns[i].watch_fd = -1;
    }
  pool->state_counts[CONN_DOWN] = (gint) pool->options.size;
  g_queue_init (&pool->waiting);

  prefix = pool->options.metrics_prefix != NULL ? pool->options.metrics_prefix : "db";
#define NAME(suffix) (g_snprintf (name, sizeof name, "%s_" suffix, prefix), name)
  {
    char name[96];

    pool->connections_gauge = bs_metrics_gauge (metrics, NAME ("pool_connections"),
                                                "Database connections in the pool, by state.",
                                                (const char *const[]){ "state", NULL });
    max_conns = bs_metrics_gauge (metrics, NAME ("pool_max_connections"),
                                  "Configured size of the database pool.", NULL);
    bs_metric_set (max_conns, NULL, pool->options.size);
    pool->waiting_gauge = bs_metrics_gauge (
        metrics, NAME ("pool_waiting_queries"),
        "Queries waiting for a connection: queued, or sent behind another query.", NULL);
    pool->queries_total
        = bs_metrics_counter (metrics, NAME ("queries_total"), "Database queries, by outcome.",
                              (const char *const[]){ "outcome", NULL });
    pool->query_duration = bs_metrics_histogram (
        metrics, NAME ("query_duration_seconds"),
        "Time from queueing a query to its result, including waiting for a connection.", NULL,
        bs_metrics_latency_buckets, bs_metrics_n_latency_buckets);
    pool->syncs_total = bs_metrics_counter (
        metrics, NAME ("pipeline_syncs_total"),
        "Batches of queries sent to the database together, each closed by one Sync: round "
        "trips. The queries_total counter divided by this is the queries per round trip.",
        NULL);
  }
#undef NAME
  bs_metrics_add_collector (metrics, collect_metrics, pool, NULL);
  pool->dispatch = g_source_new (&bs_db_dispatch_funcs, sizeof (DispatchSource));
  ((DispatchSource *) pool->dispatch)->pool = pool;
  g_source_set_name (pool->dispatch, "bs-db dispatch");
  g_source_attach (pool->dispatch, g_main_context_get_thread_default ());
  return pool;
}

void
bs_db_pool_warm_up (BsDbPool *pool)
{
  if (!pool->started)
    pool->warming_up = TRUE;
}

void
bs_db_pool_warm_up_failed (BsDbPool *pool)
{
  if (!pool->warming_up)
    return;
  pool->warming_up = FALSE;
  bs_db_pool_fail_waiting (pool);
}

void
bs_db_pool_start (BsDbPool *pool)
{
  if (pool->started)
    return;
  pool->started = TRUE;
  pool->warming_up = FALSE;
  for (guint i = 0; i < pool->options.size; i++)
    bs_db_conn_connect (&pool->conns[i]);
}

void
bs_db_pool_set_schema_lost_func (BsDbPool *pool, GSourceFunc func, gpointer user_data)
{
  pool->schema_lost_func = func;
  pool->schema_lost_data = user_data;
}

void
bs_db_pool_set_connected_func (BsDbPool *pool, GSourceFunc func, gpointer user_data)
{
  pool->connected_func = func;
  pool->connected_data = user_data;
}

void
bs_db_pool_reconnect_now (BsDbPool *pool)
{
  if (!pool->started || pool->n_connected > 0)
    return;
  /* queries wait for these attempts (within their deadline), not fail fast */
  pool->last_connect_failed = FALSE;
  for (guint i = 0; i < pool->options.size; i++)
    {
      Conn *conn = &pool->conns[i];

      if (conn->state == CONN_DOWN && conn->timer_id != 0)
        {
          g_clear_handle_id (&conn->timer_id, bs_source_remove);
          conn->backoff_ms = BACKOFF_MIN_MS;
          bs_db_conn_connect (conn);
        }
    }
}

gboolean
bs_db_pool_is_connected (BsDbPool *pool)
{
  return pool->n_connected > 0;
}

void
bs_db_pool_free (BsDbPool *pool)
{
  if (pool == NULL)
    return;
  for (guint i = 0; i < pool->options.size; i++)
    {
      Conn *conn = &pool->conns[i];
      bs_db_conn_unwatch (conn);
      g_clear_handle_id (&conn->timer_id, bs_source_remove);
      if (conn->resolving != NULL)
        g_cancellable_cancel (conn->resolving);
      g_clear_object (&conn->resolving);
      bs_db_conn_drain_running (conn, "shutting down");
      g_clear_pointer (&conn->pg, PQfinish);
    }
  bs_db_pool_fail_waiting (pool);
  g_source_destroy (pool->dispatch);
  g_source_unref (pool->dispatch);
  g_clear_pointer (&pool->ping, bs_single_flight_free);
  g_free (pool->conns);
  g_array_unref (pool->statements);
  g_free (pool->dsn);
  g_free (pool->application_name);
  g_free (pool);
}

static gboolean
query_timeout_cb (gpointer user_data)
{
  GTask *task = user_data;
  Query *query = g_task_get_task_data (task);
  BsDbPool *pool = query->pool;

  query->timeout_id = 0;
  if (query->conn != NULL)
    {
      /* sent: the connection's state is unknown; drop it, fail the query
       * (the reads sent with it are sent again) */
      Conn *conn = query->conn;
      g_queue_remove (&conn->running, task);
      pool->n_running--;
      query->conn = NULL;
      bs_db_query_fail (pool, task, BS_ERROR_TIMEOUT, "database query timed out");
      bs_db_conn_reset (conn, "query timed out");
      return G_SOURCE_REMOVE;
    }
  if (g_queue_remove (&pool->waiting, task))
    {
      bs_db_waiting_changed (pool);
      bs_db_query_fail (pool, task, BS_ERROR_TIMEOUT,
                        "timed out waiting for a database connection");
    }
  return G_SOURCE_REMOVE;
}

void
bs_db_pool_query_async (BsDbPool *pool, const char *statement, const char *const *params,
                        guint n_params, guint timeout_ms, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  Query *query = g_new0 (Query, 1);

  query->pool = pool; /* the pool is not a GObject, so not the task's source object */
  g_task_set_source_tag (task, bs_db_pool_query_async);
  for (guint i = 0; i < pool->statements->len; i++)
    {
      const BsDbStatement *st = &g_array_index (pool->statements, BsDbStatement, i);
      if (st->name != NULL && strcmp (st->name, statement) == 0)
        query->statement = st;
    }
  query->n_params = n_params;
  query->params = g_new0 (char *, MAX (n_params, 1));
  for (guint i = 0; i < n_params; i++)
    query->params[i] = g_strdup (params[i]);
  query->enqueued_us = g_get_monotonic_time ();
  g_task_set_task_data (task, query, bs_db_query_free);

  if (query->statement == NULL)
    {
      bs_db_count_query (pool, "error");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_INTERNAL, "no statement named %s",
                               statement);
      return;
    }
  if ((!pool->started && !pool->warming_up)
      || (pool->n_connected == 0 && pool->last_connect_failed))
    {
      bs_db_count_query (pool, "unavailable");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_UNAVAILABLE,
                               pool->started ? "database unavailable" : "database not ready");
      return;
    }
  if (bs_db_pool_n_waiting (pool) >= pool->options.max_waiting)
    {
      bs_db_count_query (pool, "unavailable");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_UNAVAILABLE,
                               "database busy: too many queries waiting");
      return;
    }
  query->timeout_id = bs_timeout_add (timeout_ms > 0 ? timeout_ms : pool->options.query_timeout_ms,
                                      query_timeout_cb, task);
  g_queue_push_tail (&pool->waiting, g_steal_pointer (&task));
  bs_db_waiting_changed (pool);
  bs_db_pool_want_dispatch (pool);
}

PGresult *
bs_db_pool_query_finish (BsDbPool *pool, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
ping_start (gpointer user_data, GAsyncReadyCallback callback, gpointer callback_data)
{
  BsDbPool *pool = user_data;

  bs_db_pool_query_async (pool, "bs_ping", NULL, 0, pool->ping_timeout_ms, NULL, callback,
                          callback_data);
}

static gboolean
ping_finish (gpointer user_data, GAsyncResult *result)
{
  g_autoptr (PGresult) res = bs_db_pool_query_finish (user_data, result, NULL);

  return res != NULL;
}

void
bs_db_pool_ping_async (BsDbPool *pool, guint timeout_ms, GAsyncReadyCallback callback,
                       gpointer user_data)
{
  if (pool->ping == NULL)
    pool->ping = bs_single_flight_new (ping_start, ping_finish, pool);
  pool->ping_timeout_ms = timeout_ms; /* for the run this may start */
  bs_single_flight_run_async (pool->ping, callback, user_data);
}

gboolean
bs_db_pool_ping_finish (BsDbPool *pool, GAsyncResult *result)
{
  return bs_single_flight_run_finish (pool->ping, result);
}

PGresult *
bs_db_pool_query_finish_or_reply (BsDbPool *pool, GAsyncResult *result, BsRequest *request)
{
  g_autoptr (GError) error = NULL;
  PGresult *res = bs_db_pool_query_finish (pool, result, &error);

  if (res == NULL)
    bs_request_reply_error (request, error);
  return res;
}
