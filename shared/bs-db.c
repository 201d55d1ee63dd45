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
#include "bs-db.h"

#include "bs-config.h"
#include "bs-db-hosts.h"
#include "bs-error.h"
#include "bs-loop.h"
#include "bs-request.h"
#include "bs-single-flight.h"

#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000

typedef enum
{
  CONN_DOWN,
  CONN_CONNECTING,
  CONN_PREPARING,
  CONN_IDLE,
  CONN_BUSY,
  N_CONN_STATES
} ConnState;

static const char *const conn_state_names[] = { "down", "connecting", "preparing", "idle", "busy" };

typedef struct
{
  const BsDbStatement *statement; /* in the pool's array */
  char **params;                  /* n_params entries, each may be NULL */
  guint n_params;
  gint64 enqueued_us;
  guint timeout_id;
  BsDbPool *pool;
  struct _Conn *conn; /* while sent */
  PGresult *result;   /* its first error, or else its last result, so far */
  gboolean aborted;   /* skipped after an earlier query of its batch failed */
} Query;

typedef struct _Conn
{
  BsDbPool *pool;
  PGconn *pg;
  ConnState state;
  guint watch_id;
  int watch_fd;
  GIOCondition watch_cond;
  guint timer_id; /* reconnect backoff or connect timeout */
  guint backoff_ms;
  guint prepare_index;
  GCancellable *resolving;   /* while the host names are being looked up */
  guint first_host;          /* where libpq starts in the host list: moves on after a timeout */
  gboolean read_only_server; /* a write was refused as on a standby (25006) */
  PGresult *result;          /* while preparing: the statement's result so far */
  GQueue running;            /* GTask: sent, in order, results not handed over yet */
  guint n_read;              /* the first n_read of them have all their results */
  guint n_unsynced;          /* sent since the last Sync */
  gboolean write_running;    /* the query running is not read-only */
} Conn;

struct _BsDbPool
{
  char *dsn;
  GArray *statements; /* BsDbStatement: the caller's, then bs_ping, then { NULL } */
  BsDbOptions options;
  char *application_name;
  gboolean resolve; /* the DSN names hosts libpq would resolve synchronously */
  int wants;        /* the DSN's target_session_attrs: WANTS_* */
  Conn *conns;
  GQueue waiting; /* GTask */
  gboolean started;
  gboolean warming_up; /* not started yet, but its first start is on the way */
  gboolean last_connect_failed;
  guint n_connected;
  GSourceFunc schema_lost_func;
  gpointer schema_lost_data;
  GSourceFunc connected_func;
  gpointer connected_data;
  BsMetricFamily *connections_gauge;
  BsMetricFamily *waiting_gauge;
  BsMetricFamily *queries_total;
  BsMetricFamily *query_duration;
  BsMetricFamily *syncs_total;
  GSource *dispatch; /* sends waiting queries once per loop iteration */
  gboolean dispatch_wanted;
  BsSingleFlight *ping;  /* concurrent pings share one SELECT 1 */
  guint ping_timeout_ms; /* of the ping in progress */
  /* for the metrics collector, which may run on another loop's thread */
  gint state_counts[N_CONN_STATES]; /* atomic */
  gint n_waiting;                   /* atomic: pool_n_waiting() */
  guint n_running;                  /* queries sent, on every connection */
};

enum
{
  WANTS_ANY,
  WANTS_PRIMARY,    /* not a standby */
  WANTS_READ_WRITE, /* not a standby, and writes allowed by default */
};

static void conn_connect (Conn *conn);

static void
conn_set_state (Conn *conn, ConnState state)
{
  g_atomic_int_add (&conn->pool->state_counts[conn->state], -1);
  g_atomic_int_add (&conn->pool->state_counts[state], 1);
  conn->state = state;
}

/* Queries waiting for a connection: in the queue, and sent on a connection
 * behind another query (a pipelined read waits for the ones before it). */
static guint
pool_n_waiting (BsDbPool *pool)
{
  guint busy = (guint) g_atomic_int_get (&pool->state_counts[CONN_BUSY]);

  return g_queue_get_length (&pool->waiting)
         + (pool->n_running > busy ? pool->n_running - busy : 0);
}

static void
waiting_changed (BsDbPool *pool)
{
  g_atomic_int_set (&pool->n_waiting, (gint) pool_n_waiting (pool));
}

/* Send waiting queries at the start of the next loop iteration. */
static void
pool_want_dispatch (BsDbPool *pool)
{
  if (!g_queue_is_empty (&pool->waiting))
    pool->dispatch_wanted = TRUE;
}

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

static void
query_free (gpointer data)
{
  Query *query = data;

  g_clear_handle_id (&query->timeout_id, bs_source_remove);
  g_clear_pointer (&query->result, PQclear);
  for (guint i = 0; i < query->n_params; i++)
    g_free (query->params[i]);
  g_free (query->params);
  g_free (query);
}

static void
count_query (BsDbPool *pool, const char *outcome)
{
  bs_metric_inc (pool->queries_total, (const char *const[]){ outcome, NULL }, 1);
}

/* ---- connection watch ---------------------------------------------------- */

static gboolean conn_on_io (int fd, GIOCondition condition, gpointer user_data);

static void
conn_unwatch (Conn *conn)
{
  g_clear_handle_id (&conn->watch_id, bs_source_remove);
  conn->watch_fd = -1;
}

/* (Re)arm the watch on the connection's current socket: PQsocket can change
 * during connection, and a stale watch on a closed fd spins. */
static void
conn_watch (Conn *conn, GIOCondition cond)
{
  int fd = PQsocket (conn->pg);

  if (conn->watch_id != 0 && conn->watch_fd == fd && conn->watch_cond == cond)
    return;
  conn_unwatch (conn);
  if (fd < 0)
    return;
  conn->watch_fd = fd;
  conn->watch_cond = cond;
  conn->watch_id = bs_fd_add (fd, cond | G_IO_ERR | G_IO_HUP, conn_on_io, conn);
}

static void
pool_update_connected (BsDbPool *pool)
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

static void
query_fail (BsDbPool *pool, GTask *task, int code, const char *message)
{
  count_query (pool, code == BS_ERROR_TIMEOUT ? "timeout" : "unavailable");
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
static void
conn_drain_running (Conn *conn, const char *message)
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
      query_fail (pool, task, BS_ERROR_UNAVAILABLE, message);
    }
  waiting_changed (pool);
  pool_want_dispatch (pool);
  conn->n_read = 0;
  conn->n_unsynced = 0;
  conn->write_running = FALSE;
}

static void
pool_fail_waiting (BsDbPool *pool)
{
  GTask *task;

  while ((task = g_queue_pop_head (&pool->waiting)) != NULL)
    {
      waiting_changed (pool);
      query_fail (pool, task, BS_ERROR_UNAVAILABLE, "database unavailable");
    }
}

static gboolean
conn_retry_cb (gpointer user_data)
{
  Conn *conn = user_data;

  conn->timer_id = 0;
  conn_connect (conn);
  return G_SOURCE_REMOVE;
}

/* Drop the connection and try again after a backoff. */
static void
conn_reset (Conn *conn, const char *why)
{
  BsDbPool *pool = conn->pool;
  gboolean was_connecting = conn->state == CONN_CONNECTING || conn->state == CONN_PREPARING;

  g_debug ("database connection %u: %s", (guint) (conn - pool->conns), why);
  conn_unwatch (conn);
  g_clear_handle_id (&conn->timer_id, bs_source_remove);
  if (conn->resolving != NULL)
    g_cancellable_cancel (conn->resolving);
  g_clear_object (&conn->resolving);
  g_clear_pointer (&conn->pg, PQfinish);
  conn_drain_running (conn, "database connection lost");
  conn_set_state (conn, CONN_DOWN);
  if (was_connecting)
    {
      if (!pool->last_connect_failed)
        g_warning ("cannot connect to the database: %s", why);
      pool->last_connect_failed = TRUE;
      conn->backoff_ms = CLAMP (conn->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    }
  else
    conn->backoff_ms = BACKOFF_MIN_MS;
  pool_update_connected (pool);
  if (pool->n_connected == 0 && pool->last_connect_failed)
    pool_fail_waiting (pool);
  conn->timer_id = bs_timeout_add (
      g_random_int_range ((gint32) conn->backoff_ms / 2, (gint32) conn->backoff_ms + 1),
      conn_retry_cb, conn);
}

static char *
conn_error_message (Conn *conn)
{
  const char *msg = conn->pg != NULL ? PQerrorMessage (conn->pg) : NULL;
  char *copy = g_strdup (msg != NULL && *msg != '\0' ? msg : "unknown error");

  return g_strstrip (copy);
}

/* ---- connecting and preparing ------------------------------------------- */

void
bs_db_log_notice (void *user_data, const char *message)
{
  g_autofree char *text = g_strstrip (g_strdup (message));

  /* without this libpq prints server notices (and the FATAL a server sends
   * when it shuts down) straight to stderr, outside our log format */
  g_message ("PostgreSQL: %s", text);
}

static void
conn_prepare_next (Conn *conn)
{
  const BsDbStatement *st
      = &g_array_index (conn->pool->statements, BsDbStatement, conn->prepare_index);

  if (st->name == NULL)
    {
      if (!PQenterPipelineMode (conn->pg))
        {
          g_autofree char *why = conn_error_message (conn);
          conn_reset (conn, why);
          return;
        }
      conn_set_state (conn, CONN_IDLE);
      conn->backoff_ms = 0;
      conn->pool->last_connect_failed = FALSE;
      pool_update_connected (conn->pool);
      conn_watch (conn, G_IO_IN);
      pool_want_dispatch (conn->pool);
      return;
    }
  if (!PQsendPrepare (conn->pg, st->name, st->sql, 0, NULL))
    {
      g_autofree char *why = conn_error_message (conn);
      conn_reset (conn, why);
      return;
    }
  conn_watch (conn, PQflush (conn->pg) == 1 ? G_IO_IN | G_IO_OUT : G_IO_IN);
}

static gboolean
conn_timeout_connect_cb (gpointer user_data)
{
  Conn *conn = user_data;

  conn->timer_id = 0;
  /* libpq tries the hosts in order and enforces no timeout of its own here:
   * one that does not answer would hold every attempt up, so begin the next
   * attempt with the next host */
  conn->first_host++;
  conn_reset (conn, "timed out connecting");
  return G_SOURCE_REMOVE;
}

/* Start libpq's connection; with @hostaddr it will not look the hosts up. */
static void
conn_start_pg (Conn *conn, const char *host, const char *hostaddr, const char *port)
{
  BsDbPool *pool = conn->pool;
  BsDbConnectParams params;

  bs_db_connect_params_init (&params, pool->dsn, pool->application_name, host, hostaddr, port);
  conn->pg = PQconnectStartParams (params.keywords, params.values, 1);
  if (conn->pg != NULL)
    PQsetNoticeProcessor (conn->pg, bs_db_log_notice, conn);
  if (conn->pg == NULL || PQstatus (conn->pg) == CONNECTION_BAD)
    {
      g_autofree char *why = conn_error_message (conn);
      conn_reset (conn, why);
      return;
    }
  conn_watch (conn, G_IO_OUT); /* PQconnectPoll starts as if PGRES_POLLING_WRITING */
}

static void
resolved_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  const BsDbHosts *hosts = bs_db_hosts_resolve_finish (result, &error);
  Conn *conn = user_data;
  g_autofree char *host = NULL;
  g_autofree char *hostaddr = NULL;
  g_autofree char *port = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* reset or freed meanwhile: do not touch it */
  g_clear_object (&conn->resolving);
  if (hosts == NULL || !bs_db_hosts_build (hosts, conn->first_host, &host, &hostaddr, &port))
    {
      conn_reset (conn, error != NULL ? error->message : "no host address");
      return;
    }
  /* every address, in order, as libpq's own host list */
  conn_start_pg (conn, host, hostaddr, port);
}

static void
conn_connect (Conn *conn)
{
  BsDbPool *pool = conn->pool;
  BsDbHosts *hosts = pool->resolve ? bs_db_hosts_new (pool->dsn) : NULL;

  conn_set_state (conn, CONN_CONNECTING);
  conn->read_only_server = FALSE;
  conn->timer_id = bs_timeout_add (CONNECT_TIMEOUT_MS, conn_timeout_connect_cb, conn);
  if (hosts == NULL)
    {
      conn_start_pg (conn, NULL, NULL, NULL);
      return;
    }
  /* libpq would call getaddrinfo() on the loop: look the names up in GIO's
   * threads, again at every attempt (a failover may move a name) */
  conn->resolving = g_cancellable_new ();
  bs_db_hosts_resolve_async (hosts, conn->resolving, resolved_cb, conn);
}

static void
conn_poll_connect (Conn *conn)
{
  switch (PQconnectPoll (conn->pg))
    {
      case PGRES_POLLING_READING:
        conn_watch (conn, G_IO_IN);
        break;
      case PGRES_POLLING_WRITING:
        conn_watch (conn, G_IO_OUT);
        break;
      case PGRES_POLLING_OK:
        g_clear_handle_id (&conn->timer_id, bs_source_remove);
        if (PQsetnonblocking (conn->pg, 1) != 0)
          {
            g_autofree char *why = conn_error_message (conn);
            conn_reset (conn, why);
            return;
          }
        conn_set_state (conn, CONN_PREPARING);
        conn->prepare_index = 0;
        conn_prepare_next (conn);
        break;
      case PGRES_POLLING_FAILED:
      default:
        {
          g_autofree char *why = conn_error_message (conn);
          conn_reset (conn, why);
        }
        break;
    }
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
      count_query (pool, "ok");
      g_task_return_pointer (task, result, (GDestroyNotify) PQclear);
    }
  else if (result == NULL)
    {
      count_query (pool, "error");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_INTERNAL, "query returned no result");
    }
  else
    {
      count_query (pool, "error");
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
      conn_set_state (conn, CONN_IDLE);
    }
  waiting_changed (pool);
  pool_want_dispatch (pool);
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
      conn_reset (&pool->conns[i], "another connection found the server read-only");
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
              conn_reset (conn, "the server is read-only");
              pool_reset_idle (conn->pool);
              return FALSE;
            }
          continue;
        }
      task = g_queue_peek_nth (&conn->running, conn->n_read);
      if (task == NULL)
        {
          PQclear (result);
          conn_reset (conn, "a result for no query");
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
      g_autofree char *why = conn_error_message (conn);
      conn_reset (conn, why);
      return;
    }
  conn_watch (conn, flushed == 1 ? G_IO_IN | G_IO_OUT : G_IO_IN);
}

/* While preparing (not yet in pipeline mode): the statement's results. */
static void
conn_read_prepared (Conn *conn)
{
  while (!PQisBusy (conn->pg))
    {
      PGresult *result = PQgetResult (conn->pg);
      if (result == NULL)
        {
          g_autoptr (PGresult) prep = g_steal_pointer (&conn->result);
          if (prep == NULL || PQresultStatus (prep) != PGRES_COMMAND_OK)
            {
              const char *sqlstate
                  = prep != NULL ? PQresultErrorField (prep, PG_DIAG_SQLSTATE) : NULL;
              BsDbPool *pool = conn->pool;
              if (sqlstate != NULL && g_str_has_prefix (sqlstate, "42")
                  && pool->schema_lost_func != NULL)
                pool->schema_lost_func (pool->schema_lost_data);
              g_autofree char *why = g_strdup_printf (
                  "preparing %s: %s",
                  g_array_index (conn->pool->statements, BsDbStatement, conn->prepare_index).name,
                  prep != NULL ? PQresultErrorMessage (prep) : "no result");
              conn_reset (conn, g_strstrip (why));
              return;
            }
          conn->prepare_index++;
          conn_prepare_next (conn);
          return;
        }
      /* keep the first error, or else the last result */
      if (conn->result != NULL && PQresultStatus (conn->result) == PGRES_FATAL_ERROR)
        PQclear (result);
      else
        {
          g_clear_pointer (&conn->result, PQclear);
          conn->result = result;
        }
    }
  conn_watch (conn, G_IO_IN);
}

static void
conn_read_results (Conn *conn)
{
  PGnotify *notify;

  if (!PQconsumeInput (conn->pg))
    {
      g_autofree char *why = conn_error_message (conn);
      conn_reset (conn, why);
      return;
    }
  if (conn->state == CONN_PREPARING)
    {
      conn_read_prepared (conn);
      return;
    }
  if (!conn_read_pipeline (conn))
    return;
  while ((notify = PQnotifies (conn->pg)) != NULL)
    PQfreemem (notify);
  /* an idle connection that becomes readable: a notice, or the server died */
  if (PQstatus (conn->pg) != CONNECTION_OK)
    {
      g_autofree char *why = conn_error_message (conn);
      conn_reset (conn, why);
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
        conn_poll_connect (conn);
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
      g_autofree char *why = conn_error_message (conn);
      conn_reset (conn, why);
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
          count_query (pool, "cancelled");
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
          g_autofree char *why = conn_error_message (conn);
          conn_reset (conn, why); /* the query is still waiting: another may take it */
          current = NULL;
          continue;
        }
      g_queue_pop_head (&pool->waiting);
      query->conn = conn;
      g_queue_push_tail (&conn->running, task);
      pool->n_running++;
      conn->n_unsynced++;
      if (conn->state == CONN_IDLE)
        conn_set_state (conn, CONN_BUSY);
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
  waiting_changed (pool);
}

typedef struct
{
  GSource source;
  BsDbPool *pool;
} DispatchSource;

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

static GSourceFuncs dispatch_funcs = {
  .prepare = dispatch_prepare,
  .check = dispatch_check,
  .dispatch = dispatch_dispatch,
};

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
  pool->dispatch = g_source_new (&dispatch_funcs, sizeof (DispatchSource));
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
  pool_fail_waiting (pool);
}

void
bs_db_pool_start (BsDbPool *pool)
{
  if (pool->started)
    return;
  pool->started = TRUE;
  pool->warming_up = FALSE;
  for (guint i = 0; i < pool->options.size; i++)
    conn_connect (&pool->conns[i]);
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
          conn_connect (conn);
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
      conn_unwatch (conn);
      g_clear_handle_id (&conn->timer_id, bs_source_remove);
      if (conn->resolving != NULL)
        g_cancellable_cancel (conn->resolving);
      g_clear_object (&conn->resolving);
      conn_drain_running (conn, "shutting down");
      g_clear_pointer (&conn->pg, PQfinish);
    }
  pool_fail_waiting (pool);
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
      query_fail (pool, task, BS_ERROR_TIMEOUT, "database query timed out");
      conn_reset (conn, "query timed out");
      return G_SOURCE_REMOVE;
    }
  if (g_queue_remove (&pool->waiting, task))
    {
      waiting_changed (pool);
      query_fail (pool, task, BS_ERROR_TIMEOUT, "timed out waiting for a database connection");
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
  g_task_set_task_data (task, query, query_free);

  if (query->statement == NULL)
    {
      count_query (pool, "error");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_INTERNAL, "no statement named %s",
                               statement);
      return;
    }
  if ((!pool->started && !pool->warming_up)
      || (pool->n_connected == 0 && pool->last_connect_failed))
    {
      count_query (pool, "unavailable");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_UNAVAILABLE,
                               pool->started ? "database unavailable" : "database not ready");
      return;
    }
  if (pool_n_waiting (pool) >= pool->options.max_waiting)
    {
      count_query (pool, "unavailable");
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_UNAVAILABLE,
                               "database busy: too many queries waiting");
      return;
    }
  query->timeout_id = bs_timeout_add (timeout_ms > 0 ? timeout_ms : pool->options.query_timeout_ms,
                                      query_timeout_cb, task);
  g_queue_push_tail (&pool->waiting, g_steal_pointer (&task));
  waiting_changed (pool);
  pool_want_dispatch (pool);
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
