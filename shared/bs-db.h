/* bs-db.h: a small pool of non-blocking libpq connections on the main loop,
 * in libpq's pipeline mode. */
#pragma once

#include "bs-metrics.h"

#include <gio/gio.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGconn, PQfinish)

/* SQL rendering timestamptz column @col as RFC 3339 UTC with microseconds:
 * 2026-11-25T17:58:44.662393Z. */
#define BS_SQL_TIMESTAMP(col)                                                                      \
  "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* A statement prepared on every connection of the pool. @read_only statements
 * (they change nothing) are pipelined: several share a connection and one
 * round trip. Any other statement runs alone on its connection, in its own
 * transaction, and nothing is queued behind it. */
typedef struct
{
  const char *name;
  const char *sql;
  gboolean read_only;
} BsDbStatement;

typedef struct
{
  guint size;             /* connections; default 4 */
  guint query_timeout_ms; /* from enqueue to result; default 5000 */
  guint max_waiting;      /* queries waiting (queued, or pipelined behind another on a
                           * connection) before new ones fail; default 1024 */
  guint pipeline_depth;   /* read-only queries in flight per connection; default 32 */
  const char *application_name;
  const char *metrics_prefix; /* of the pool's metric names; default "db" (db_pool_…) */
  gboolean reads_only;        /* prepare only the read-only statements (a replica's pool) */
} BsDbOptions;

typedef struct _BsDbPool BsDbPool;

void bs_db_options_init_default (BsDbOptions *options);

/* @options from the environment: <PREFIX>_DB_TIMEOUT_MS, _DB_MAX_WAITING and
 * _DB_PIPELINE_DEPTH (absent: @options' own values); <PREFIX>_DB_POOL_SIZE
 * goes to *@pool_size, the connections of every event loop together.
 * BS_ERROR_CONFIG names a bad value. */
gboolean bs_db_options_from_env (const char *prefix, BsDbOptions *options, guint *pool_size,
                                 GError **error);

/* Loop @index's share of @pool_size connections over @n_loops: at least one. */
guint bs_db_pool_share (guint pool_size, guint index, guint n_loops);

/* @statements ends with a { NULL, NULL } entry and must outlive the pool.
 * Gauges and counters of the pool are added to @metrics. */
BsDbPool *bs_db_pool_new (const char *dsn, const BsDbStatement *statements,
                          const BsDbOptions *options, BsMetrics *metrics);
void bs_db_pool_free (BsDbPool *pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsDbPool, bs_db_pool_free)

/* Start connecting (and keep reconnecting with backoff). Until then every
 * query fails at once with BS_ERROR_UNAVAILABLE. */
void bs_db_pool_start (BsDbPool *pool);

/* The pool is about to be started (its schema is being checked): until
 * bs_db_pool_start() or bs_db_pool_warm_up_failed(), queries wait (within
 * their deadline) instead of failing at once. So the request that made
 * systemd start a socket-activated daemon is served, not refused. Only
 * for the first start: later, a database that is away fails queries fast. */
void bs_db_pool_warm_up (BsDbPool *pool);
/* The first start will not come soon: fail the waiting queries now. */
void bs_db_pool_warm_up_failed (BsDbPool *pool);

/* Called when preparing the statements fails because an object they name is
 * missing (SQLSTATE class 42: the schema is gone, e.g. the database was
 * recreated); the pool keeps retrying with backoff meanwhile. */
void bs_db_pool_set_schema_lost_func (BsDbPool *pool, GSourceFunc func, gpointer user_data);

/* Called when the pool goes from no connection up to one (the database is
 * back). With several event loops, each with a pool of the same database,
 * the others then bs_db_pool_reconnect_now() rather than wait out their
 * backoff. */
void bs_db_pool_set_connected_func (BsDbPool *pool, GSourceFunc func, gpointer user_data);
/* A pool with no connection up stops waiting out its backoff and connects
 * now; until it knows the outcome, queries wait rather than fail fast. */
void bs_db_pool_reconnect_now (BsDbPool *pool);

/* TRUE when at least one connection is up. */
gboolean bs_db_pool_is_connected (BsDbPool *pool);

/* Run prepared statement @statement with text parameters (NULL is SQL NULL).
 * @timeout_ms 0 means the pool's default. Errors: BS_ERROR_UNAVAILABLE
 * (no database), BS_ERROR_TIMEOUT, or one mapped from the SQLSTATE. A
 * write refused because the server is read-only (SQLSTATE 25006: a standby,
 * or an old primary after a switchover) is BS_ERROR_UNAVAILABLE, and its
 * connection is dropped: the reconnection looks for the primary again
 * (target_session_attrs=read-write). The write is not retried. */
void bs_db_pool_query_async (BsDbPool *pool, const char *statement, const char *const *params,
                             guint n_params, guint timeout_ms, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
PGresult *bs_db_pool_query_finish (BsDbPool *pool, GAsyncResult *result, GError **error);

/* For HTTP handlers: the result, or NULL after replying to @request with the
 * query's error (503 when the database is away, ...). */
typedef struct _BsRequest BsRequest;
PGresult *bs_db_pool_query_finish_or_reply (BsDbPool *pool, GAsyncResult *result,
                                            BsRequest *request);

/* "SELECT 1" within @timeout_ms, for health checks: pings asked for while
 * one runs share its outcome (a burst of GET /health is one query). */
void bs_db_pool_ping_async (BsDbPool *pool, guint timeout_ms, GAsyncReadyCallback callback,
                            gpointer user_data);
/* TRUE when the database answered. */
gboolean bs_db_pool_ping_finish (BsDbPool *pool, GAsyncResult *result);

/* A libpq notice processor that logs through GLib. */
void bs_db_log_notice (void *user_data, const char *message);

/* libpq keyword/value arrays: our connection defaults (TCP keepalives, a user
 * timeout, connect_timeout, no GSSAPI encryption attempt, application_name) first, then @dsn
 * expanded, so anything the DSN sets wins; then, when @hostaddr is not NULL, @host and
 * @hostaddr (comma-separated lists of the same length), so that libpq does
 * not resolve the names itself, and @port when not NULL (a list of that
 * length too). Borrowed strings. */
typedef struct
{
  const char *keywords[13];
  const char *values[13];
} BsDbConnectParams;

void bs_db_connect_params_init (BsDbConnectParams *params, const char *dsn,
                                const char *application_name, const char *host,
                                const char *hostaddr, const char *port);

G_END_DECLS
