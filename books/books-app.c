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
  BsMigrator *migrator; /* made with loop 0's pool */
  BsDbOptions db_options;
  guint pool_size; /* BOOKS_DB_POOL_SIZE: shared out between the loops */
  char *dsn;
  char *read_dsn;       /* BOOKS_DB_READ_DSN, or NULL */
  guint read_pool_size; /* BOOKS_DB_READ_POOL_SIZE */
};

/* What one event loop serves with. */
typedef struct
{
  BsDbPool *pool;
  BsDbPool *read_pool; /* or NULL */
  BooksApi api;
} BooksLoop;

static gpointer
books_loop_setup (BsService *service, guint index, BsRouter *router, BsMetrics *metrics,
                  gpointer user_data, GError **error)
{
  BooksApp *app = user_data;
  BooksLoop *loop = g_new0 (BooksLoop, 1);
  BsDbOptions options = app->db_options;
  guint n_loops = bs_service_get_n_loops (service);

  options.size = bs_db_pool_share (app->pool_size, index, n_loops);
  loop->pool = bs_db_pool_new (app->dsn, books_store_statements, &options, metrics);
  if (index == 0)
    app->migrator
        = bs_migrator_new (loop->pool, app->dsn, SERVICE_NAME, MIGRATIONS_DIR, MIGRATION_LOCK_KEY);
  else
    bs_migrator_add_pool (app->migrator, loop->pool);
  if (app->read_dsn != NULL)
    {
      /* the replica's own pool: reads only, its own metrics (db_replica_…);
       * started now: until it connects, reads go to the primary */
      options.size = bs_db_pool_share (app->read_pool_size, index, n_loops);
      options.metrics_prefix = "db_replica";
      options.reads_only = TRUE;
      loop->read_pool = bs_db_pool_new (app->read_dsn, books_store_statements, &options, metrics);
      bs_db_pool_start (loop->read_pool);
    }
  loop->api.pool = loop->pool;
  loop->api.read_pool = loop->read_pool;
  loop->api.migrator = app->migrator;
  books_api_register (&loop->api, router);
  return loop;
}

static void
books_loop_teardown (gpointer data)
{
  BooksLoop *loop = data;

  bs_db_pool_free (loop->read_pool);
  bs_db_pool_free (loop->pool);
  g_free (loop);
}

BooksApp *
books_app_new (GError **error)
{
  g_autoptr (BooksApp) app = g_new0 (BooksApp, 1);
  g_autoptr (GBytes) openapi = NULL;
  BsDbOptions *options = &app->db_options;
  guint n_loops = 1;
  const char *read_dsn;

  books_register_resource (); /* migrations and the OpenAPI document */
  bs_db_options_init_default (options);
  options->application_name = SERVICE_NAME;
  if (!bs_config_get_pg_dsn ("BOOKS_DB_DSN", &app->dsn, error)
      || !bs_db_options_from_env ("BOOKS", options, &app->pool_size, error)
      || !bs_config_get_threads ("BOOKS_THREADS", &n_loops, error))
    return NULL;
  /* optional: a standby (or a list, target_session_attrs=prefer-standby) for GETs */
  read_dsn = g_getenv ("BOOKS_DB_READ_DSN");
  if (read_dsn != NULL && read_dsn[0] != '\0'
      && (!bs_config_get_pg_dsn ("BOOKS_DB_READ_DSN", &app->read_dsn, error)
          || !bs_config_get_uint ("BOOKS_DB_READ_POOL_SIZE", app->pool_size, 1, 64,
                                  &app->read_pool_size, error)))
    return NULL;

  app->service = bs_service_new (SERVICE_NAME, DEFAULT_PORT, error);
  /* tokens, when configured, on writes; the catalogue stays open to read */
  if (app->service == NULL || !bs_service_require_tokens (app->service, NULL, error)
      || !bs_service_enable_api_explorer (app->service, error)) /* GET /docs */
    return NULL;
  bs_service_set_loops (app->service, n_loops, books_loop_setup, books_loop_teardown, app);

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
  /* the migrator before the pools, which the service's loops free */
  g_clear_pointer (&app->migrator, bs_migrator_free);
  g_clear_pointer (&app->service, bs_service_free);
  g_free (app->dsn);
  g_free (app->read_dsn);
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
  if (!bs_service_listen (app->service, error)) /* sets the loops up */
    return FALSE;
  bs_migrator_start (app->migrator);
  return TRUE;
}

int
books_app_run (BooksApp *app)
{
  return bs_service_run (app->service);
}
