/* bs-db-private.h: what the parts of the database pool share: the pool,
 * its connections and queries, and the functions one part calls in another.
 *   bs-db.c          the connection watch, running queries, the dispatch source
 *   bs-db-connect.c  connecting (host names resolved first) and preparing
 *   bs-db-pool.c     options, the public API: creating, starting, querying
 * Not installed, not for the services: bs-db.h is their interface. */
#pragma once

#include "bs-db.h"

#include "bs-single-flight.h"

G_BEGIN_DECLS

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
  gint n_waiting;                   /* atomic: bs_db_pool_n_waiting() */
  guint n_running;                  /* queries sent, on every connection */
};

enum
{
  WANTS_ANY,
  WANTS_PRIMARY,    /* not a standby */
  WANTS_READ_WRITE, /* not a standby, and writes allowed by default */
};

typedef struct
{
  GSource source;
  BsDbPool *pool;
} DispatchSource;

/* bs-db.c */
extern GSourceFuncs bs_db_dispatch_funcs; /* sends waiting queries once per loop iteration */
void bs_db_conn_set_state (Conn *conn, ConnState state);
guint bs_db_pool_n_waiting (BsDbPool *pool);
void bs_db_waiting_changed (BsDbPool *pool);
void bs_db_pool_want_dispatch (BsDbPool *pool);
void bs_db_query_free (gpointer data);
void bs_db_count_query (BsDbPool *pool, const char *outcome);
void bs_db_conn_unwatch (Conn *conn);
void bs_db_conn_watch (Conn *conn, GIOCondition cond);
void bs_db_pool_update_connected (BsDbPool *pool);
void bs_db_query_fail (BsDbPool *pool, GTask *task, int code, const char *message);
void bs_db_conn_drain_running (Conn *conn, const char *message);
void bs_db_pool_fail_waiting (BsDbPool *pool);
void bs_db_conn_reset (Conn *conn, const char *why);
char *bs_db_conn_error_message (Conn *conn);

/* bs-db-connect.c */
void bs_db_conn_connect (Conn *conn);
void bs_db_conn_poll_connect (Conn *conn);
void bs_db_conn_read_prepared (Conn *conn);

G_END_DECLS
