/* bs-db.c: connections are state machines driven by GLib fd watches:
 *   DOWN --timer--> CONNECTING --PQconnectPoll OK--> PREPARING --> IDLE <--> BUSY
 * and any failure goes back to DOWN with exponential backoff. Nothing here
 * blocks: PQconnectStartParams, PQsendPrepare, PQsendQueryPrepared,
 * PQconsumeInput and PQflush only.
 *
 * Once prepared, a connection is in libpq's pipeline mode. Queries are not
 * sent when they are asked for but once per main-loop iteration, by the
 * pool's dispatch source: read-only ones asked for meanwhile go out together,
 * several on one connection, closed by one Sync, so one send(2) and one
 * round trip carry them all, and PostgreSQL answers them in one go. A write
 * goes alone to an idle connection with a Sync of its own, so it is its own
 * transaction, as without a pipeline, and nothing waits behind it. A query's
 * result is handed over when its Sync is answered. When a query of a batch
 * fails, PostgreSQL skips the rest of the batch (PGRES_PIPELINE_ABORTED):
 * being read-only, they are queued again; so are the reads of a connection
 * that is lost. */
#include "bs-db-private.h"

#include "bs-error.h"
#include "bs-loop.h"

void
bs_db_conn_set_state (Conn *conn, ConnState state)
{
  g_atomic_int_add (&conn->pool->state_counts[conn->state], -1);
  g_atomic_int_add (&conn->pool->state_counts[state], 1);
  conn->state = state;
}

/* Queries waiting for a connection: in the queue, and sent on a connection
 * behind another query (a pipelined read waits for the ones before it). */
guint
bs_db_pool_n_waiting (BsDbPool *pool)
{
  guint busy = (guint) g_atomic_int_get (&pool->state_counts[CONN_BUSY]);

  return g_queue_get_length (&pool->waiting)
         + (pool->n_running > busy ? pool->n_running - busy : 0);
}

void
bs_db_waiting_changed (BsDbPool *pool)
{
  g_atomic_int_set (&pool->n_waiting, (gint) bs_db_pool_n_waiting (pool));
}

/* Send waiting queries at the start of the next loop iteration. */
void
bs_db_pool_want_dispatch (BsDbPool *pool)
{
  if (!g_queue_is_empty (&pool->waiting))
    pool->dispatch_wanted = TRUE;
}

void
bs_db_query_free (gpointer data)
{
  Query *query = data;

  g_clear_handle_id (&query->timeout_id, bs_source_remove);
  g_clear_pointer (&query->result, PQclear);
  for (guint i = 0; i < query->n_params; i++)
    g_free (query->params[i]);
  g_free (query->params);
  g_free (query);
}

void
bs_db_count_query (BsDbPool *pool, const char *outcome)
{
  bs_metric_inc (pool->queries_total, (const char *const[]){ outcome, NULL }, 1);
}

/* ---- connection watch ---------------------------------------------------- */

static gboolean conn_on_io (int fd, GIOCondition condition, gpointer user_data);

void
bs_db_conn_unwatch (Conn *conn)
{
  g_clear_handle_id (&conn->watch_id, bs_source_remove);
  conn->watch_fd = -1;
}

/* (Re)arm the watch on the connection's current socket: PQsocket can change
 * during connection, and a stale watch on a closed fd spins. */
void
bs_db_conn_watch (Conn *conn, GIOCondition cond)
{
  int fd = PQsocket (conn->pg);

  if (conn->watch_id != 0 && conn->watch_fd == fd && conn->watch_cond == cond)
    return;
  bs_db_conn_unwatch (conn);
  if (fd < 0)
    return;
  conn->watch_fd = fd;
  conn->watch_cond = cond;
  conn->watch_id = bs_fd_add (fd, cond | G_IO_ERR | G_IO_HUP, conn_on_io, conn);
}

void
bs_db_pool_update_connected (BsDbPool *pool)
{
  guint n = 0;

  for (guint i = 0; i < pool->options.size; i++)
    if (pool->conns[i].state == CONN_IDLE || pool->conns[i].state == CONN_BUSY)
      n++;
  gboolean came_up = n > 0 && pool->n_connected == 0;

  if (came_up)
    g_message ("database connected (%u of %u connections)", n, pool->options.size);
  else if (n == 0 && pool->n_connected > 0)
    g_warning ("database connection lost; reconnecting");
  pool->n_connected = n;
  if (came_up && pool->connected_func != NULL)
    pool->connected_func (pool->connected_data);
}

void
bs_db_query_fail (BsDbPool *pool, GTask *task, int code, const char *message)
{
  bs_db_count_query (pool, code == BS_ERROR_TIMEOUT ? "timeout" : "unavailable");
  g_task_return_new_error (task, BS_ERROR, code, "%s", message);
  g_object_unref (task);
}

/* Forget that @task was sent; it will be sent again. */
static void
query_unsend (GTask *task)
{
  Query *query = g_task_get_task_data (task);

  query->conn = NULL;
  query->aborted = FALSE;
  g_clear_pointer (&query->result, PQclear);
}

/* The connection is gone with the queries sent on it: the read-only ones
 * go back to the head of the queue, in order (they changed nothing, and
 * their deadlines still hold); whether a write happened is unknown, so it
 * fails, as a lost connection always failed a query. */
void
bs_db_conn_drain_running (Conn *conn, const char *message)
{
  BsDbPool *pool = conn->pool;
  GTask *task;

  g_clear_pointer (&conn->result, PQclear);
  while ((task = g_queue_pop_tail (&conn->running)) != NULL)
    {
      pool->n_running--;
      Query *query = g_task_get_task_data (task);

      if (query->statement->read_only && pool->started)
        {
          query_unsend (task);
          g_queue_push_head (&pool->waiting, task);
          continue;
        }
      query->conn = NULL;
      bs_db_query_fail (pool, task, BS_ERROR_UNAVAILABLE, message);
    }
  bs_db_waiting_changed (pool);
  bs_db_pool_want_dispatch (pool);
  conn->n_read = 0;
  conn->n_unsynced = 0;
  conn->write_running = FALSE;
}

void
bs_db_pool_fail_waiting (BsDbPool *pool)
{
  GTask *task;

  while ((task = g_queue_pop_head (&pool->waiting)) != NULL)
    {
      bs_db_waiting_changed (pool);
      bs_db_query_fail (pool, task, BS_ERROR_UNAVAILABLE, "database unavailable");
    }
}

static gboolean
conn_retry_cb (gpointer user_data)
{
  Conn *conn = user_data;

  conn->timer_id = 0;
  bs_db_conn_connect (conn);
  return G_SOURCE_REMOVE;
}

/* Drop the connection and try again after a backoff. */
void
bs_db_conn_reset (Conn *conn, const char *why)
{
  BsDbPool *pool = conn->pool;
  gboolean was_connecting = conn->state == CONN_CONNECTING || conn->state == CONN_PREPARING;

  g_debug ("database connection %u: %s", (guint) (conn - pool->conns), why);
  bs_db_conn_unwatch (conn);
  g_clear_handle_id (&conn->timer_id, bs_source_remove);
  if (conn->resolving != NULL)
    g_cancellable_cancel (conn->resolving);
  g_clear_object (&conn->resolving);
  g_clear_pointer (&conn->pg, PQfinish);
  bs_db_conn_drain_running (conn, "database connection lost");
  bs_db_conn_set_state (conn, CONN_DOWN);
  if (was_connecting)
    {
      if (!pool->last_connect_failed)
        g_warning ("cannot connect to the database: %s", why);
      pool->last_connect_failed = TRUE;
      conn->backoff_ms = CLAMP (conn->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    }
  else
    conn->backoff_ms = BACKOFF_MIN_MS;
  bs_db_pool_update_connected (pool);
  if (pool->n_connected == 0 && pool->last_connect_failed)
    bs_db_pool_fail_waiting (pool);
  conn->timer_id = bs_timeout_add (
      g_random_int_range ((gint32) conn->backoff_ms / 2, (gint32) conn->backoff_ms + 1),
      conn_retry_cb, conn);
}

char *
bs_db_conn_error_message (Conn *conn)
{
  const char *msg = conn->pg != NULL ? PQerrorMessage (conn->pg) : NULL;
  char *copy = g_strdup (msg != NULL && *msg != '\0' ? msg : "unknown error");

  return g_strstrip (copy);
}

/* ---- running queries ---------------------------------------------------- */

static GError *
error_from_result (const PGresult *result)
{
  const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
  const char *primary = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
  BsErrorCode code = bs_error_code_from_sqlstate (sqlstate);

  return g_error_new (BS_ERROR, code, "database error %s: %s", sqlstate != NULL ? sqlstate : "?",
                      primary != NULL ? primary : PQresultErrorMessage (result));
}

/* Hand @task (which the caller owns) its result. */
static void
query_complete (BsDbPool *pool, GTask *task)
{
  Query *query = g_task_get_task_data (task);
  PGresult *result = g_steal_pointer (&query->result);
  ExecStatusType status = result != NULL ? PQresultStatus (result) : PGRES_FATAL_ERROR;

  query->conn = NULL;
  g_clear_handle_id (&query->timeout_id, bs_source_remove);
  bs_metric_observe (pool->query_duration, NULL,
                     (double) (g_get_monotonic_time () - query->enqueued_us) / G_USEC_PER_SEC);
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
    {
      bs_db_count_query (pool, "ok");
      g_task_return_pointer (task, result, (GDestroyNotify) PQclear);
    }
  else if (result == NULL)
    {
      bs_db_count_query (pool, "error");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_INTERNAL, "query returned no result");
    }
  else
    {
      bs_db_count_query (pool, "error");
      g_task_return_error (task, error_from_result (result));
      PQclear (result);
    }
  g_object_unref (task);
}

/* PostgreSQL answered a Sync: the queries read since the one before are
 * done (committed, when they wrote). Those the batch skipped go back to the
 * head of the queue, in order; the others get their results. */
static void
conn_complete_batch (Conn *conn)
{
  BsDbPool *pool = conn->pool;
  GQueue done = G_QUEUE_INIT;
  GQueue skipped = G_QUEUE_INIT;
  GTask *task;

  for (guint i = 0; i < conn->n_read; i++)
    {
      task = g_queue_pop_head (&conn->running);
      pool->n_running--;
      if (((Query *) g_task_get_task_data (task))->aborted)
        {
          query_unsend (task);
          g_queue_push_tail (&skipped, task);
        }
      else
        g_queue_push_tail (&done, task);
    }
  conn->n_read = 0;
  while ((task = g_queue_pop_tail (&skipped)) != NULL)
    g_queue_push_head (&pool->waiting, task);
  if (g_queue_is_empty (&conn->running))
    {
      conn->write_running = FALSE;
      bs_db_conn_set_state (conn, CONN_IDLE);
    }
  bs_db_waiting_changed (pool);
  bs_db_pool_want_dispatch (pool);
  while ((task = g_queue_pop_head (&done)) != NULL)
    query_complete (pool, task);
}

/* One connection found its server read-only: the idle others, connected
 * to the same server as likely as not, reconnect too rather than wait for
 * a write to fail there or a read to see an old primary's data. The busy
 * ones find out after their batch. */
static void
pool_reset_idle (BsDbPool *pool)
{
  for (guint i = 0; i < pool->options.size; i++)
    if (pool->conns[i].state == CONN_IDLE)
      bs_db_conn_reset (&pool->conns[i], "another connection found the server read-only");
}

/* libpq checks target_session_attrs when it connects; the server reports
 * changes since (default_transaction_read_only set on an old primary, a
 * standby promoted) with each answer: check again after each batch. */
static gboolean
conn_server_as_wanted (Conn *conn)
{
  const char *standby = PQparameterStatus (conn->pg, "in_hot_standby");
  const char *read_only = PQparameterStatus (conn->pg, "default_transaction_read_only");

  switch (conn->pool->wants)
    {
      case WANTS_READ_WRITE:
        if (g_strcmp0 (read_only, "on") == 0)
          return FALSE;
        /* fall through */
      case WANTS_PRIMARY:
        return g_strcmp0 (standby, "on") != 0;
      case WANTS_ANY:
      default:
        return TRUE;
    }
}

/* Take the results that have arrived. In pipeline mode each query's
 * results end with NULL, and each Sync has a PGRES_PIPELINE_SYNC. */
static gboolean
conn_read_pipeline (Conn *conn)
{
  gboolean after_null = FALSE;

  while (conn->state == CONN_BUSY && !PQisBusy (conn->pg))
    {
      PGresult *result = PQgetResult (conn->pg);
      GTask *task;
      Query *query;

      if (result == NULL)
        {
          if (after_null)
            break; /* nothing more until more input */
          after_null = TRUE;
          task = g_queue_peek_nth (&conn->running, conn->n_read);
          query = task != NULL ? g_task_get_task_data (task) : NULL;
          if (query != NULL && (query->result != NULL || query->aborted))
            conn->n_read++; /* the end of this query's results */
          continue;
        }
      after_null = FALSE;
      if (PQresultStatus (result) == PGRES_PIPELINE_SYNC)
        {
          PQclear (result);
          conn_complete_batch (conn);
          if (conn->read_only_server || !conn_server_as_wanted (conn))
            {
              /* a standby now (a switchover): the primary is elsewhere */
              g_warning ("the database server is read-only now (a standby?): "
                         "reconnecting to find the primary");
              bs_db_conn_reset (conn, "the server is read-only");
              pool_reset_idle (conn->pool);
              return FALSE;
            }
          continue;
        }
      task = g_queue_peek_nth (&conn->running, conn->n_read);
      if (task == NULL)
        {
          PQclear (result);
          bs_db_conn_reset (conn, "a result for no query");
          return FALSE;
        }
      query = g_task_get_task_data (task);
      if (PQresultStatus (result) == PGRES_PIPELINE_ABORTED)
        {
          query->aborted = TRUE;
          PQclear (result);
        }
      else if (query->result != NULL && PQresultStatus (query->result) == PGRES_FATAL_ERROR)
        PQclear (result); /* keep the first error */
      else
        {
          g_clear_pointer (&query->result, PQclear);
          query->result = result;
          if (g_strcmp0 (PQresultErrorField (result, PG_DIAG_SQLSTATE), "25006") == 0)
            conn->read_only_server = TRUE;
        }
    }
  return TRUE;
}

/* Send what libpq still holds and watch for what comes next. */
static void
conn_flush_and_watch (Conn *conn)
{
  int flushed = PQflush (conn->pg);

  if (flushed < 0)
    {
      g_autofree char *why = bs_db_conn_error_message (conn);
      bs_db_conn_reset (conn, why);
      return;
    }
  bs_db_conn_watch (conn, flushed == 1 ? G_IO_IN | G_IO_OUT : G_IO_IN);
}

/* While preparing (not yet in pipeline mode): the statement's results. */
static void
conn_read_results (Conn *conn)
{
  PGnotify *notify;

  if (!PQconsumeInput (conn->pg))
    {
      g_autofree char *why = bs_db_conn_error_message (conn);
      bs_db_conn_reset (conn, why);
      return;
    }
  if (conn->state == CONN_PREPARING)
    {
      bs_db_conn_read_prepared (conn);
      return;
    }
  if (!conn_read_pipeline (conn))
    return;
  while ((notify = PQnotifies (conn->pg)) != NULL)
    PQfreemem (notify);
  /* an idle connection that becomes readable: a notice, or the server died */
  if (PQstatus (conn->pg) != CONNECTION_OK)
    {
      g_autofree char *why = bs_db_conn_error_message (conn);
      bs_db_conn_reset (conn, why);
      return;
    }
  conn_flush_and_watch (conn);
}

static gboolean
conn_on_io (int fd, GIOCondition condition, gpointer user_data)
{
  Conn *conn = user_data;
  guint id = conn->watch_id;

  switch (conn->state)
    {
      case CONN_CONNECTING:
        conn->watch_id = 0; /* PQconnectPoll decides the next watch */
        bs_db_conn_poll_connect (conn);
        return G_SOURCE_REMOVE;
      case CONN_PREPARING:
      case CONN_IDLE:
      case CONN_BUSY:
        if (condition & (G_IO_IN | G_IO_ERR | G_IO_HUP))
          conn_read_results (conn);
        else
          conn_flush_and_watch (conn);
        /* either may have replaced or removed our watch */
        return conn->watch_id == id ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
      case CONN_DOWN:
      default:
        conn->watch_id = 0;
        return G_SOURCE_REMOVE;
    }
}

/* Close the batch on @conn: PostgreSQL answers after its last query. */
static void
conn_sync (Conn *conn)
{
  BsDbPool *pool = conn->pool;

  if (conn->n_unsynced == 0)
    return;
  conn->n_unsynced = 0;
  if (!PQpipelineSync (conn->pg)) /* this sends the batch */
    {
      g_autofree char *why = bs_db_conn_error_message (conn);
      bs_db_conn_reset (conn, why);
      return;
    }
  bs_metric_inc (pool->syncs_total, NULL, 1);
  conn_flush_and_watch (conn);
}

static gboolean
conn_can_take (const Conn *conn, const Query *query)
{
  if (conn->state == CONN_IDLE)
    return TRUE;
  return conn->state == CONN_BUSY && query->statement->read_only && !conn->write_running
         && g_queue_get_length ((GQueue *) &conn->running) < conn->pool->options.pipeline_depth;
}

/* Where to send @query: after the reads already going out on @current in
 * this batch while there is room; else the connection with the fewest
 * queries in flight that may take it (a write: only an idle one). */
static Conn *
pool_pick_conn (BsDbPool *pool, const Query *query, Conn *current)
{
  Conn *best = NULL;

  if (current != NULL && conn_can_take (current, query))
    return current;
  for (guint i = 0; i < pool->options.size; i++)
    {
      Conn *conn = &pool->conns[i];

      if (conn_can_take (conn, query)
          && (best == NULL || conn->running.length < best->running.length))
        best = conn;
    }
  return best;
}

/* Send every waiting query that a connection can take, then close each
 * connection's batch with one Sync. */
static void
pool_dispatch (BsDbPool *pool)
{
  Conn *current = NULL;
  GTask *task;

  while ((task = g_queue_peek_head (&pool->waiting)) != NULL)
    {
      Query *query = g_task_get_task_data (task);
      Conn *conn;

      if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
        {
          g_queue_pop_head (&pool->waiting);
          bs_db_count_query (pool, "cancelled");
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
          g_object_unref (task);
          continue;
        }
      conn = pool_pick_conn (pool, query, current);
      if (conn == NULL)
        break;
      if (!PQsendQueryPrepared (conn->pg, query->statement->name, (int) query->n_params,
                                (const char *const *) query->params, NULL, NULL, 0))
        {
          g_autofree char *why = bs_db_conn_error_message (conn);
          bs_db_conn_reset (conn, why); /* the query is still waiting: another may take it */
          current = NULL;
          continue;
        }
      g_queue_pop_head (&pool->waiting);
      query->conn = conn;
      g_queue_push_tail (&conn->running, task);
      pool->n_running++;
      conn->n_unsynced++;
      if (conn->state == CONN_IDLE)
        bs_db_conn_set_state (conn, CONN_BUSY);
      if (!query->statement->read_only)
        {
          conn->write_running = TRUE; /* alone, and its own transaction */
          conn_sync (conn);
          continue;
        }
      if (current != NULL && current != conn)
        conn_sync (current);
      current = conn;
    }
  if (current != NULL)
    conn_sync (current);
  bs_db_waiting_changed (pool);
}

static gboolean
dispatch_prepare (GSource *source, gint *timeout)
{
  BsDbPool *pool = ((DispatchSource *) source)->pool;

  *timeout = -1;
  return pool->dispatch_wanted;
}

static gboolean
dispatch_check (GSource *source)
{
  return ((DispatchSource *) source)->pool->dispatch_wanted;
}

static gboolean
dispatch_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  BsDbPool *pool = ((DispatchSource *) source)->pool;

  pool->dispatch_wanted = FALSE;
  pool_dispatch (pool);
  return G_SOURCE_CONTINUE;
}

GSourceFuncs bs_db_dispatch_funcs = {
  .prepare = dispatch_prepare,
  .check = dispatch_check,
  .dispatch = dispatch_dispatch,
};
