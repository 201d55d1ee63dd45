/* orders-app.c: wire config, pool, migrations, the Books client and routes
 * into a BsService. */
#include "orders-app.h"

#include "orders-api.h"
#include "orders-books.h"
#include "orders-relay.h"
#include "orders-resources.h"
#include "orders-status.h"
#include "orders-store.h"

#include "bs-config.h"
#include "bs-db.h"
#include "bs-error.h"
#include "bs-migrate.h"
#include "bs-migrator.h"
#include "bs-service.h"
#include "bs-stream-trimmer.h"
#include "bs-stream.h"

#include <string.h>

#define SERVICE_NAME "bookstore-orders"
#define DEFAULT_PORT 8082
#define MIGRATIONS_DIR "/org/bookstore/orders/sql"
#define MIGRATION_LOCK_KEY G_GINT64_CONSTANT (0x6f7264657273) /* "orders" */
#define PURGE_INTERVAL_S (60 * 60)
#define FIRST_PURGE_POLL_MS 500
#define OUTBOX_RETENTION_HOURS 72 /* sent events: kept a few days, for operators */
#define CONSUMER_NAME_MAX 200

struct _OrdersApp
{
  BsService *service;
  BsDbPool *pool; /* loop 0's: also the relay's, the status consumer's, the purge's */
  BsMigrator *migrator;
  OrdersBooks *books; /* loop 0's; the other loops' share its circuit breaker */
  BsDbOptions db_options;
  guint pool_size; /* ORDERS_DB_POOL_SIZE: shared out between the loops */
  OrdersBooksOptions books_options;
  char *books_url;
  char *books_ca_file;
  char *dsn;
  guint key_retention_hours;
  guint purge_id;
  BsConfigRedis redis;
  guint relay_interval_ms;
  guint claim_idle_ms;
  guint stream_retention_ms;
  char *consumer_name;
  OrdersRelay *relay;       /* order events → Redis */
  OrdersStatus *status;     /* status changes ← Redis */
  BsStreamTrimmer *trimmer; /* the events stream, on the relay's connection */
};

/* What one event loop serves with. Loop 0's pool and Books client are the
 * app's (made before the loops, on the main thread); the others own theirs. */
typedef struct
{
  OrdersApp *app;
  guint index;
  BsDbPool *pool;
  OrdersBooks *books;
  OrdersApi api;
} OrdersLoop;

static gpointer
orders_loop_setup (BsService *service, guint index, BsRouter *router, BsMetrics *metrics,
                   gpointer user_data, GError **error)
{
  OrdersApp *app = user_data;
  g_autofree OrdersLoop *loop = g_new0 (OrdersLoop, 1);

  loop->app = app;
  loop->index = index;
  if (index == 0)
    {
      loop->pool = app->pool;
      loop->books = app->books;
    }
  else
    {
      BsDbOptions options = app->db_options;

      loop->books = orders_books_new (&app->books_options, app->books, metrics, error);
      if (loop->books == NULL)
        return NULL;
      options.size = bs_db_pool_share (app->pool_size, index, bs_service_get_n_loops (service));
      loop->pool = bs_db_pool_new (app->dsn, orders_store_statements, &options, metrics);
      bs_migrator_add_pool (app->migrator, loop->pool);
    }
  loop->api.pool = loop->pool;
  loop->api.migrator = app->migrator;
  loop->api.books = loop->books;
  loop->api.relay = app->relay;
  loop->api.status = app->status;
  orders_api_init_metrics (&loop->api, metrics);
  orders_api_register (&loop->api, router);
  return g_steal_pointer (&loop);
}

static void
orders_loop_teardown (gpointer data)
{
  OrdersLoop *loop = data;

  if (loop->index > 0)
    {
      bs_db_pool_free (loop->pool);
      orders_books_free (loop->books);
    }
  g_free (loop);
}

static gboolean
read_books_options (OrdersBooksOptions *options, char **base_url, char **ca_file, GError **error)
{
  options->timeout_ms = 2000;
  options->failure_threshold = 5;
  options->cooldown_ms = 10000;
  options->max_connections = 16;
  options->max_waiting = 256;
  if (!bs_config_get_string ("BOOKS_SERVICE_URL", NULL, base_url, error)
      || !bs_config_get_uint ("BOOKS_TIMEOUT_MS", options->timeout_ms, 100, 60000,
                              &options->timeout_ms, error)
      || !bs_config_get_uint ("BOOKS_CIRCUIT_FAILURE_THRESHOLD", options->failure_threshold, 1,
                              1000, &options->failure_threshold, error)
      || !bs_config_get_uint ("BOOKS_CIRCUIT_COOLDOWN_MS", options->cooldown_ms, 100, 3600000,
                              &options->cooldown_ms, error)
      || !bs_config_get_uint ("BOOKS_MAX_CONNECTIONS", options->max_connections, 1, 1024,
                              &options->max_connections, error)
      || !bs_config_get_uint ("BOOKS_MAX_WAITING", options->max_waiting, 0, 100000,
                              &options->max_waiting, error)
      || !bs_config_get_string ("BOOKS_CA_FILE", "", ca_file, error))
    return FALSE;
  options->base_url = *base_url;
  options->ca_file = *ca_file;
  return TRUE;
}

static gboolean
read_redis (OrdersApp *app, GError **error)
{
  g_autofree char *default_consumer = bs_stream_default_consumer ();

  app->relay_interval_ms = 1000;
  app->claim_idle_ms = 30000;
  app->stream_retention_ms = 60000;
  if (!bs_config_get_redis (&app->redis, error)
      || !bs_config_get_uint ("ORDERS_RELAY_INTERVAL_MS", app->relay_interval_ms, 10, 600000,
                              &app->relay_interval_ms, error)
      || !bs_config_get_uint ("ORDERS_CLAIM_IDLE_MS", app->claim_idle_ms, 100, 86400000,
                              &app->claim_idle_ms, error)
      || !bs_config_get_uint ("ORDERS_STREAM_RETENTION_MS", app->stream_retention_ms, 0,
                              BS_STREAM_RETENTION_MAX_MS, &app->stream_retention_ms, error)
      || !bs_config_get_string ("ORDERS_CONSUMER_NAME", default_consumer, &app->consumer_name,
                                error))
    return FALSE;
  if (strlen (app->consumer_name) > CONSUMER_NAME_MAX)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "ORDERS_CONSUMER_NAME is invalid: at most %d characters", CONSUMER_NAME_MAX);
      return FALSE;
    }
  for (const char *c = app->consumer_name; *c != '\0'; c++)
    if (*c < 0x21 || *c > 0x7e)
      {
        g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                     "ORDERS_CONSUMER_NAME is invalid: visible ASCII characters only");
        return FALSE;
      }
  return TRUE;
}

/* The relay and the status consumer, each on its own Redis connection. */
static void
create_redis_users (OrdersApp *app)
{
  static const char *const connection_label[] = { "connection", NULL };
  BsMetrics *metrics = bs_service_get_metrics (app->service);
  BsMetricFamily *connected = bs_metrics_gauge (
      metrics, "redis_connected", "1 while the Redis connection is up", connection_label);
  BsRedisOptions redis;

  if (app->redis.env_password_ignored)
    g_warning ("REDIS_PASSWORD ignored: the Redis password comes from %s",
               app->redis.password_source);
  bs_redis_options_init_default (&redis);
  bs_redis_options_set_config (&redis, &app->redis);
  redis.master_switches
      = bs_metrics_counter (metrics, "redis_master_switches_total",
                            "Changes of Redis master the sentinels named", connection_label);
  app->relay = orders_relay_new (app->pool, &redis, app->relay_interval_ms, metrics, connected);
  app->status = orders_status_new (app->pool, &redis, app->consumer_name, app->claim_idle_ms,
                                   metrics, connected);
  /* Orders writes the events stream: it keeps it bounded */
  app->trimmer = bs_stream_trimmer_new (orders_relay_get_redis (app->relay), metrics,
                                        app->stream_retention_ms);
  bs_stream_trimmer_add_consumed (app->trimmer, ORDERS_EVENTS_STREAM, ORDERS_EVENTS_GROUP);
}

static void
redis_user_stopped (gpointer user_data)
{
  bs_service_release (user_data);
}

/* SIGTERM: publish and read no more; what is in flight holds the stop. */
static void
stop_redis_users (BsService *service, gpointer user_data)
{
  OrdersApp *app = user_data;

  bs_stream_trimmer_stop (app->trimmer);
  if (orders_relay_stop (app->relay, redis_user_stopped, service))
    bs_service_hold (service);
  if (orders_status_stop (app->status, redis_user_stopped, service))
    bs_service_hold (service);
}

static void
report_purge (OrdersApp *app, GAsyncResult *result, const char *what)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) res = bs_db_pool_query_finish (app->pool, result, &error);

  if (res == NULL)
    g_message ("%s not purged this time: %s", what, error->message);
  else if (g_ascii_strtoll (PQgetvalue (res, 0, 0), NULL, 10) > 0)
    g_message ("purged %s %s", PQgetvalue (res, 0, 0), what);
}

static void
keys_purged (GObject *source, GAsyncResult *result, gpointer user_data)
{
  report_purge (user_data, result, "expired idempotency keys");
}

static void
outbox_purged (GObject *source, GAsyncResult *result, gpointer user_data)
{
  report_purge (user_data, result, "published outbox events");
}

/* Keys older than the retention go, their orders stay; so do events
 * published days ago. */
static gboolean
purge_keys (gpointer user_data)
{
  OrdersApp *app = user_data;
  char hours[16], outbox_hours[16];

  if (bs_migrator_is_ready (app->migrator))
    {
      g_snprintf (hours, sizeof hours, "%u", app->key_retention_hours);
      bs_db_pool_query_async (app->pool, ORDERS_SQL_PURGE_KEYS, (const char *const[]){ hours }, 1,
                              0, NULL, keys_purged, app);
      g_snprintf (outbox_hours, sizeof outbox_hours, "%d", OUTBOX_RETENTION_HOURS);
      bs_db_pool_query_async (app->pool, ORDERS_SQL_OUTBOX_PURGE,
                              (const char *const[]){ outbox_hours }, 1, 0, NULL, outbox_purged,
                              app);
    }
  return G_SOURCE_CONTINUE;
}

/* Once the schema is ready: purge (keys may have expired while the service
 * was down), then hourly; and start publishing and consuming events. */
static gboolean
first_purge (gpointer user_data)
{
  OrdersApp *app = user_data;

  if (!bs_migrator_is_ready (app->migrator))
    return G_SOURCE_CONTINUE;
  purge_keys (app);
  app->purge_id = g_timeout_add_seconds (PURGE_INTERVAL_S, purge_keys, app);
  if (!bs_service_is_stopping (app->service))
    {
      orders_relay_start (app->relay);
      orders_status_start (app->status);
      bs_stream_trimmer_start (app->trimmer);
    }
  return G_SOURCE_REMOVE;
}

OrdersApp *
orders_app_new (GError **error)
{
  g_autoptr (OrdersApp) app = g_new0 (OrdersApp, 1);
  g_autoptr (GBytes) openapi = NULL;
  BsDbOptions *options = &app->db_options;
  BsDbOptions loop0_options;
  guint n_loops = 1;

  orders_register_resource (); /* migrations and the OpenAPI document */
  bs_db_options_init_default (options);
  options->application_name = SERVICE_NAME;
  app->key_retention_hours = 24;
  if (!bs_config_get_pg_dsn ("DATABASE_URL", &app->dsn, error)
      || !bs_db_options_from_env ("ORDERS", options, &app->pool_size, error)
      || !bs_config_get_uint ("IDEMPOTENCY_KEY_RETENTION_HOURS", app->key_retention_hours, 24, 8760,
                              &app->key_retention_hours, error)
      || !read_books_options (&app->books_options, &app->books_url, &app->books_ca_file, error)
      || !read_redis (app, error) || !bs_config_get_threads ("ORDERS_THREADS", &n_loops, error))
    return NULL;

  app->service = bs_service_new (SERVICE_NAME, DEFAULT_PORT, error);
  /* tokens, when configured, on writes and on reading orders */
  if (app->service == NULL
      || !bs_service_require_tokens (app->service, (const char *const[]){ "/v1/orders", NULL },
                                     error)
      || !bs_service_enable_api_explorer (app->service, error)) /* GET /docs */
    return NULL;
  /* loop 0 runs on this, the main thread: its client and pool are made here */
  app->books
      = orders_books_new (&app->books_options, NULL, bs_service_get_metrics (app->service), error);
  if (app->books == NULL)
    return NULL;
  loop0_options = *options;
  loop0_options.size = bs_db_pool_share (app->pool_size, 0, n_loops);
  app->pool = bs_db_pool_new (app->dsn, orders_store_statements, &loop0_options,
                              bs_service_get_metrics (app->service));
  app->migrator
      = bs_migrator_new (app->pool, app->dsn, SERVICE_NAME, MIGRATIONS_DIR, MIGRATION_LOCK_KEY);
  create_redis_users (app);
  bs_service_add_stop_func (app->service, stop_redis_users, app);
  bs_service_set_loops (app->service, n_loops, orders_loop_setup, orders_loop_teardown, app);

  openapi = g_resources_lookup_data ("/org/bookstore/orders/openapi.json", 0, NULL);
  if (openapi != NULL)
    bs_service_set_openapi (app->service, openapi);
  return g_steal_pointer (&app);
}

void
orders_app_free (OrdersApp *app)
{
  if (app == NULL)
    return;
  g_clear_handle_id (&app->purge_id, g_source_remove);
  /* the other event loops first: they use all that follows (and free
   * their own pools and Books clients) */
  if (app->service != NULL)
    bs_service_stop_loops (app->service);
  /* before the pool they query and the service whose metrics they count in;
   * the trimmer before the relay whose connection it uses */
  g_clear_pointer (&app->trimmer, bs_stream_trimmer_free);
  g_clear_pointer (&app->relay, orders_relay_free);
  g_clear_pointer (&app->status, orders_status_free);
  g_clear_pointer (&app->migrator, bs_migrator_free);
  /* the pool and the Books client before the service: failing their calls
   * replies through the service, and counts in the service's metrics */
  g_clear_pointer (&app->pool, bs_db_pool_free);
  g_clear_pointer (&app->books, orders_books_free);
  g_clear_pointer (&app->service, bs_service_free);
  g_free (app->dsn);
  g_free (app->books_url);
  g_free (app->books_ca_file);
  bs_config_redis_clear (&app->redis);
  g_free (app->consumer_name);
  g_free (app);
}

gboolean
orders_app_migrate (OrdersApp *app, guint *n_applied, GError **error)
{
  return bs_migrate_run (app->dsn, SERVICE_NAME, MIGRATIONS_DIR, MIGRATION_LOCK_KEY, n_applied,
                         error);
}

gboolean
orders_app_start (OrdersApp *app, GError **error)
{
  if (!bs_service_listen (app->service, error))
    return FALSE;
  bs_migrator_start (app->migrator);
  app->purge_id = g_timeout_add (FIRST_PURGE_POLL_MS, first_purge, app);
  return TRUE;
}

int
orders_app_run (OrdersApp *app)
{
  return bs_service_run (app->service);
}
