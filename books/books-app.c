/* books-app.c: wire config, pool, migrations and routes into a BsService. */
#include "books-app.h"

#include "books-api.h"
#include "books-resources.h"
#include "books-store.h"

#include "bs-config.h"
#include "bs-db.h"
#include "bs-migrate.h"
#include "bs-service.h"
#include "bs-systemd.h"

#define SERVICE_NAME "bookstore-books"
#define DEFAULT_PORT 8001
#define MIGRATIONS_DIR "/org/bookstore/books/sql"
#define MIGRATION_LOCK_KEY G_GINT64_CONSTANT (0x626f6f6b73) /* "books" */
#define MIGRATE_BACKOFF_MAX_MS 10000

struct _BooksApp
{
  BsService *service;
  BsDbPool *pool;
  BooksApi api;
  char *dsn;
  gboolean migrated;
  gboolean migrating;
  guint migrate_backoff_ms;
  guint migrate_retry_id;
  GCancellable *cancellable;
};

static gboolean schema_lost_cb (gpointer user_data);

BooksApp *
books_app_new (GError **error)
{
  g_autoptr (BooksApp) app = g_new0 (BooksApp, 1);
  g_autoptr (GBytes) openapi = NULL;
  BsDbOptions options;

  books_register_resource (); /* migrations and the OpenAPI document */
  bs_db_options_init_default (&options);
  options.application_name = SERVICE_NAME;
  if (!bs_config_get_pg_dsn ("BOOKS_DB_DSN", &app->dsn, error)
      || !bs_config_get_uint ("BOOKS_DB_POOL_SIZE", options.size, 1, 64, &options.size, error)
      || !bs_config_get_uint ("BOOKS_DB_TIMEOUT_MS", options.query_timeout_ms, 100, 600000,
                              &options.query_timeout_ms, error))
    return NULL;

  app->service = bs_service_new (SERVICE_NAME, DEFAULT_PORT, error);
  if (app->service == NULL)
    return NULL;
  app->cancellable = g_cancellable_new ();
  app->pool = bs_db_pool_new (app->dsn, books_store_statements, &options,
                              bs_service_get_metrics (app->service));
  app->api.pool = app->pool;
  app->api.migrated = &app->migrated;
  bs_db_pool_set_schema_lost_func (app->pool, schema_lost_cb, app);
  books_api_register (&app->api, bs_service_get_router (app->service));

  openapi = g_resources_lookup_data ("/org/bookstore/books/openapi.json", 0, NULL);
  if (openapi != NULL)
    bs_service_set_openapi (app->service, openapi);
  return g_steal_pointer (&app);
}

void
books_app_free (BooksApp *app)
{
  if (app == NULL)
    return;
  if (app->cancellable != NULL)
    g_cancellable_cancel (app->cancellable);
  g_clear_handle_id (&app->migrate_retry_id, g_source_remove);
  /* the pool first: failing its queries replies through the service, and
   * counts in the service's metrics */
  g_clear_pointer (&app->pool, bs_db_pool_free);
  g_clear_pointer (&app->service, bs_service_free);
  g_clear_object (&app->cancellable);
  g_free (app->dsn);
  g_free (app);
}

static void migrate_start (BooksApp *app);

/* The pool found tables missing (a database restored or recreated under
 * us): become unhealthy and migrate again; the pool retries meanwhile. */
static gboolean
schema_lost_cb (gpointer user_data)
{
  BooksApp *app = user_data;

  if (app->migrated)
    {
      g_warning ("the database schema is missing; applying migrations again");
      app->migrated = FALSE;
      app->migrate_backoff_ms = 0;
    }
  migrate_start (app);
  return G_SOURCE_REMOVE;
}

static gboolean
migrate_retry_cb (gpointer user_data)
{
  BooksApp *app = user_data;

  app->migrate_retry_id = 0;
  migrate_start (app);
  return G_SOURCE_REMOVE;
}

static void
migrate_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BooksApp *app = user_data;
  g_autoptr (GError) error = NULL;
  gint applied = bs_migrate_finish (result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  app->migrating = FALSE;
  if (applied < 0)
    {
      if (app->migrate_backoff_ms == 0)
        g_warning ("database schema not ready, will retry: %s", error->message);
      else
        g_debug ("database schema still not ready: %s", error->message);
      bs_systemd_notify_status ("Waiting for the database: %s", error->message);
      app->migrate_backoff_ms = CLAMP (app->migrate_backoff_ms * 2, 250, MIGRATE_BACKOFF_MAX_MS);
      app->migrate_retry_id = g_timeout_add (app->migrate_backoff_ms, migrate_retry_cb, app);
      return;
    }
  g_message ("database schema up to date (%d migrations applied)", applied);
  app->migrated = TRUE;
  bs_systemd_notify_status ("Serving");
  bs_db_pool_start (app->pool);
}

static void
migrate_start (BooksApp *app)
{
  if (app->migrating || app->migrate_retry_id != 0)
    return;
  app->migrating = TRUE;
  bs_migrate_async (app->dsn, SERVICE_NAME, MIGRATIONS_DIR, MIGRATION_LOCK_KEY, app->cancellable,
                    migrate_done, app);
}

gboolean
books_app_start (BooksApp *app, GError **error)
{
  if (!bs_service_listen (app->service, error))
    return FALSE;
  migrate_start (app);
  return TRUE;
}

int
books_app_run (BooksApp *app)
{
  return bs_service_run (app->service);
}
