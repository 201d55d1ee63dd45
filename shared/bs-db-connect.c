/* bs-db-connect.c: a pool connection from DOWN to IDLE: the DSN's host
 * names resolved without blocking (bs-db-hosts.c), PQconnectStartParams and
 * PQconnectPoll driven by the connection's watch, then every statement
 * prepared, then pipeline mode (bs-db.c runs the queries). */
#include "bs-db-private.h"

#include "bs-db-hosts.h"
#include "bs-error.h"
#include "bs-loop.h"

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
          g_autofree char *why = bs_db_conn_error_message (conn);
          bs_db_conn_reset (conn, why);
          return;
        }
      bs_db_conn_set_state (conn, CONN_IDLE);
      conn->backoff_ms = 0;
      conn->pool->last_connect_failed = FALSE;
      bs_db_pool_update_connected (conn->pool);
      bs_db_conn_watch (conn, G_IO_IN);
      bs_db_pool_want_dispatch (conn->pool);
      return;
    }
  if (!PQsendPrepare (conn->pg, st->name, st->sql, 0, NULL))
    {
      g_autofree char *why = bs_db_conn_error_message (conn);
      bs_db_conn_reset (conn, why);
      return;
    }
  bs_db_conn_watch (conn, PQflush (conn->pg) == 1 ? G_IO_IN | G_IO_OUT : G_IO_IN);
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
  bs_db_conn_reset (conn, "timed out connecting");
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
      g_autofree char *why = bs_db_conn_error_message (conn);
      bs_db_conn_reset (conn, why);
      return;
    }
  bs_db_conn_watch (conn, G_IO_OUT); /* PQconnectPoll starts as if PGRES_POLLING_WRITING */
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
      bs_db_conn_reset (conn, error != NULL ? error->message : "no host address");
      return;
    }
  /* every address, in order, as libpq's own host list */
  conn_start_pg (conn, host, hostaddr, port);
}

void
bs_db_conn_connect (Conn *conn)
{
  BsDbPool *pool = conn->pool;
  BsDbHosts *hosts = pool->resolve ? bs_db_hosts_new (pool->dsn) : NULL;

  bs_db_conn_set_state (conn, CONN_CONNECTING);
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

void
bs_db_conn_poll_connect (Conn *conn)
{
  switch (PQconnectPoll (conn->pg))
    {
      case PGRES_POLLING_READING:
        bs_db_conn_watch (conn, G_IO_IN);
        break;
      case PGRES_POLLING_WRITING:
        bs_db_conn_watch (conn, G_IO_OUT);
        break;
      case PGRES_POLLING_OK:
        g_clear_handle_id (&conn->timer_id, bs_source_remove);
        if (PQsetnonblocking (conn->pg, 1) != 0)
          {
            g_autofree char *why = bs_db_conn_error_message (conn);
            bs_db_conn_reset (conn, why);
            return;
          }
        bs_db_conn_set_state (conn, CONN_PREPARING);
        conn->prepare_index = 0;
        conn_prepare_next (conn);
        break;
      case PGRES_POLLING_FAILED:
      default:
        {
          g_autofree char *why = bs_db_conn_error_message (conn);
          bs_db_conn_reset (conn, why);
        }
        break;
    }
}

void
bs_db_conn_read_prepared (Conn *conn)
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
              bs_db_conn_reset (conn, g_strstrip (why));
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
  bs_db_conn_watch (conn, G_IO_IN);
}
