/* bs-migrator.c: the retry loop around bs_migrate_async(). */
#include "bs-migrator.h"

#include "bs-loop.h"
#include "bs-migrate.h"
#include "bs-systemd.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define MIGRATION_EXIT_WAIT_MS 7000

struct _BsMigrator
{
  BsDbPool *pool;
  char *dsn;
  char *application_name;
  char *resource_dir;
  gint64 lock_key;
  GPtrArray *other_pools; /* OtherPool: pools of the other event loops */
  gint ready;             /* atomic: the other loops' handlers read it */
  gboolean running;
  gboolean ever_ran;
  guint backoff_ms;
  guint retry_id;
  GCancellable *cancellable;
};

/* A pool of another event loop: driven through its own main context. */
typedef struct
{
  BsMigrator *migrator;
  BsDbPool *pool;
  GMainContext *context;
} OtherPool;

typedef struct
{
  void (*op) (BsDbPool *pool);
  BsDbPool *pool;
} PoolCall;

static gboolean
pool_call_run (gpointer data)
{
  PoolCall *call = data;

  call->op (call->pool);
  return G_SOURCE_REMOVE;
}

/* @op on every pool but @except, each on its own loop. */
static void
each_pool_but (BsMigrator *migrator, BsDbPool *except, void (*op) (BsDbPool *pool))
{
  if (migrator->pool != except)
    op (migrator->pool);
  for (guint i = 0; i < migrator->other_pools->len; i++)
    {
      OtherPool *other = g_ptr_array_index (migrator->other_pools, i);
      PoolCall *call;

      if (other->pool == except)
        continue;
      call = g_new0 (PoolCall, 1);
      call->op = op;
      call->pool = other->pool;
      bs_invoke_on (other->context, pool_call_run, call, g_free);
    }
}

static void
each_pool (BsMigrator *migrator, void (*op) (BsDbPool *pool))
{
  each_pool_but (migrator, NULL, op);
}

/* The database is back for the first pool: the others need not wait out
 * their reconnect backoff (on the main thread). */
static gboolean
pool_connected_cb (gpointer user_data)
{
  BsMigrator *migrator = user_data;

  each_pool_but (migrator, migrator->pool, bs_db_pool_reconnect_now);
  return G_SOURCE_REMOVE;
}

/* On the main thread: another loop's pool is connected again. */
static gboolean
other_connected_main (gpointer data)
{
  OtherPool *other = data;

  each_pool_but (other->migrator, other->pool, bs_db_pool_reconnect_now);
  return G_SOURCE_REMOVE;
}

static void
other_pool_free (gpointer data)
{
  OtherPool *other = data;

  g_main_context_unref (other->context);
  g_free (other);
}

static gboolean
retry_cb (gpointer user_data)
{
  BsMigrator *migrator = user_data;

  migrator->retry_id = 0;
  bs_migrator_start (migrator);
  return G_SOURCE_REMOVE;
}

static void
migrate_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  gint applied = bs_migrate_finish (result, &error);
  BsMigrator *migrator = user_data;

  /* cancelled means freed: do not touch it */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  migrator->running = FALSE;
  if (applied < 0)
    {
      each_pool (migrator, bs_db_pool_warm_up_failed);
      if (migrator->backoff_ms == 0)
        g_warning ("database schema not ready, will retry: %s", error->message);
      else
        g_debug ("database schema still not ready: %s", error->message);
      bs_systemd_notify_status ("Waiting for the database: %s", error->message);
      migrator->backoff_ms = CLAMP (migrator->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
      migrator->retry_id = g_timeout_add (migrator->backoff_ms, retry_cb, migrator);
      return;
    }
  g_message ("database schema up to date (%d migrations applied)", applied);
  g_atomic_int_set (&migrator->ready, TRUE);
  migrator->backoff_ms = 0;
  bs_systemd_notify_status ("Serving");
  each_pool (migrator, bs_db_pool_start);
}

/* The pool found tables missing (a database restored or recreated under us):
 * become not-ready and migrate again; the pool keeps retrying meanwhile. */
static gboolean
schema_lost_cb (gpointer user_data)
{
  BsMigrator *migrator = user_data;

  if (g_atomic_int_get (&migrator->ready))
    {
      g_warning ("the database schema is missing; applying migrations again");
      g_atomic_int_set (&migrator->ready, FALSE);
      migrator->backoff_ms = 0;
    }
  bs_migrator_start (migrator);
  return G_SOURCE_REMOVE;
}

BsMigrator *
bs_migrator_new (BsDbPool *pool, const char *dsn, const char *application_name,
                 const char *resource_dir, gint64 lock_key)
{
  BsMigrator *migrator = g_new0 (BsMigrator, 1);

  migrator->pool = pool;
  migrator->dsn = g_strdup (dsn);
  migrator->application_name = g_strdup (application_name);
  migrator->resource_dir = g_strdup (resource_dir);
  migrator->lock_key = lock_key;
  migrator->cancellable = g_cancellable_new ();
  migrator->other_pools = g_ptr_array_new_with_free_func (other_pool_free);
  bs_db_pool_set_schema_lost_func (pool, schema_lost_cb, migrator);
  bs_db_pool_set_connected_func (pool, pool_connected_cb, migrator);
  return migrator;
}

/* On another loop's thread: hand the news to the migrator's (the main) one. */
static gboolean
other_schema_lost_cb (gpointer user_data)
{
  OtherPool *other = user_data;

  bs_invoke_on (NULL, schema_lost_cb, other->migrator, NULL);
  return G_SOURCE_REMOVE;
}

/* On another loop's thread. */
static gboolean
other_connected_cb (gpointer user_data)
{
  bs_invoke_on (NULL, other_connected_main, user_data, NULL);
  return G_SOURCE_REMOVE;
}

void
bs_migrator_add_pool (BsMigrator *migrator, BsDbPool *pool)
{
  OtherPool *other = g_new0 (OtherPool, 1);

  other->migrator = migrator;
  other->pool = pool;
  other->context = g_main_context_ref_thread_default ();
  g_ptr_array_add (migrator->other_pools, other);
  bs_db_pool_set_schema_lost_func (pool, other_schema_lost_cb, other);
  bs_db_pool_set_connected_func (pool, other_connected_cb, other);
  if (!migrator->ever_ran)
    bs_db_pool_warm_up (pool);
}

void
bs_migrator_free (BsMigrator *migrator)
{
  if (migrator == NULL)
    return;
  /* a run still in its thread finishes there; its callback sees CANCELLED.
   * It ends within connect_timeout (5 s): wait for it, so that exit() does
   * not tear libraries down under it. */
  g_cancellable_cancel (migrator->cancellable);
  if (migrator->running && !bs_migrate_wait_idle (MIGRATION_EXIT_WAIT_MS))
    g_warning ("a migration is still running; exiting anyway");
  g_clear_handle_id (&migrator->retry_id, g_source_remove);
  bs_db_pool_set_schema_lost_func (migrator->pool, NULL, NULL);
  bs_db_pool_set_connected_func (migrator->pool, NULL, NULL);
  g_ptr_array_unref (migrator->other_pools);
  g_clear_object (&migrator->cancellable);
  g_free (migrator->dsn);
  g_free (migrator->application_name);
  g_free (migrator->resource_dir);
  g_free (migrator);
}

void
bs_migrator_start (BsMigrator *migrator)
{
  if (migrator->running || migrator->retry_id != 0)
    return;
  migrator->running = TRUE;
  if (!migrator->ever_ran)
    bs_db_pool_warm_up (migrator->pool); /* the first check usually takes milliseconds */
  migrator->ever_ran = TRUE;
  bs_migrate_async (migrator->dsn, migrator->application_name, migrator->resource_dir,
                    migrator->lock_key, migrator->cancellable, migrate_done, migrator);
}

gboolean
bs_migrator_is_ready (BsMigrator *migrator)
{
  return g_atomic_int_get (&migrator->ready);
}
