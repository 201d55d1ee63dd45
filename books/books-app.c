/* books-app.c: wire config, pool, migrations and routes into a BsService. */
#include "books-app.h"

#include "books-api.h"
#include "books-resources.h"
#include "books-store.h"

#include "bs-config.h"
#include "bs-db.h"
#include "bs-migrate.h"
#include "bs-migrator.h"
#include "bs-service.h"

#define SERVICE_NAME "bookstore-books"
#define DEFAULT_PORT 8001
#define MIGRATIONS_DIR "/org/bookstore/books/sql"
#define MIGRATION_LOCK_KEY G_GINT64_CONSTANT (0x626f6f6b73) /* "books" */

struct _BooksApp
{
  BsService *service;
  BsDbPool *pool;
  BsMigrator *migrator;
  BooksApi api;
  char *dsn;
};

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
                              &options.query_timeout_ms, error)
      || !bs_config_get_uint ("BOOKS_DB_MAX_WAITING", options.max_waiting, 1, 1000000,
                              &options.max_waiting, error))
    return NULL;

  app->service = bs_service_new (SERVICE_NAME, DEFAULT_PORT, error);
  if (app->service == NULL)
    return NULL;
  app->pool = bs_db_pool_new (app->dsn, books_store_statements, &options,
                              bs_service_get_metrics (app->service));
  app->migrator
      = bs_migrator_new (app->pool, app->dsn, SERVICE_NAME, MIGRATIONS_DIR, MIGRATION_LOCK_KEY);
  app->api.pool = app->pool;
  app->api.migrator = app->migrator;
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
  g_clear_pointer (&app->migrator, bs_migrator_free);
  /* the pool before the service: failing its queries replies through the
   * service, and counts in the service's metrics */
  g_clear_pointer (&app->pool, bs_db_pool_free);
  g_clear_pointer (&app->service, bs_service_free);
  g_free (app->dsn);
  g_free (app);
}

gboolean
books_app_migrate (BooksApp *app, guint *n_applied, GError **error)
{
  return bs_migrate_run (app->dsn, SERVICE_NAME, MIGRATIONS_DIR, MIGRATION_LOCK_KEY, n_applied,
                         error);
}

gboolean
books_app_start (BooksApp *app, GError **error)
{
  if (!bs_service_listen (app->service, error))
    return FALSE;
  bs_migrator_start (app->migrator);
  return TRUE;
}

int
books_app_run (BooksApp *app)
{
  return bs_service_run (app->service);
}
