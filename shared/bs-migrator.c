/* bs-migrator.c: the retry loop around bs_migrate_async(). */
#include "bs-migrator.h"

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
  gboolean ready;
  gboolean running;
  gboolean ever_ran;
  guint backoff_ms;
  guint retry_id;
  GCancellable *cancellable;
};

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
      bs_db_pool_warm_up_failed (migrator->pool);
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
  migrator->ready = TRUE;
  migrator->backoff_ms = 0;
  bs_systemd_notify_status ("Serving");
  bs_db_pool_start (migrator->pool);
}

/* The pool found tables missing (a database restored or recreated under us):
 * become not-ready and migrate again; the pool keeps retrying meanwhile. */
static gboolean
schema_lost_cb (gpointer user_data)
{
  BsMigrator *migrator = user_data;

  if (migrator->ready)
    {
      g_warning ("the database schema is missing; applying migrations again");
      migrator->ready = FALSE;
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
  bs_db_pool_set_schema_lost_func (pool, schema_lost_cb, migrator);
  return migrator;
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
  return migrator->ready;
}
