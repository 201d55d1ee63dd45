/* orders-main.c: bookstore-orders — the Orders REST service. */
#include "orders-app.h"

#include "bs-build-config.h"
#include "bs-main.h"

static const char environment_help[]
    = "  DATABASE_URL                     PostgreSQL DSN, URI or key=value (required)\n"
      "  BOOKS_SERVICE_URL                base URL of bookstore-books (required)\n"
      "  PORT                             TCP port to listen on (default 8082)\n"
      "  BIND_ADDRESS                     IP address to listen on (default 0.0.0.0)\n"
      "  BOOKS_TIMEOUT_MS                 deadline of one call to Books (default 2000)\n"
      "  BOOKS_CIRCUIT_FAILURE_THRESHOLD  consecutive Books failures that open the\n"
      "                                   circuit (default 5)\n"
      "  BOOKS_CIRCUIT_COOLDOWN_MS        how long the circuit stays open before one\n"
      "                                   probe (default 10000)\n"
      "  BOOKS_MAX_CONNECTIONS            keep-alive connections to Books (default 16)\n"
      "  BOOKS_CA_FILE                    CA of Books' certificate for https:// (default:\n"
      "                                   the system's trust store)\n"
      "  TLS_CERT_FILE, TLS_KEY_FILE      HTTPS with this certificate and key (or\n"
      "                                   credentials tls-cert, tls-key)\n"
      "  RATE_LIMIT_WRITES                writes a second per client address (default 0)\n"
      "  DOCS_ASSETS_DIR                  Swagger UI for GET /docs (default\n"
      "                                   " BS_SWAGGER_UI_DIR ")\n"
      "  DOCS_ASSETS_URL                  load Swagger UI from this URL instead (default:\n"
      "                                   unset)\n"
      "  BOOKS_MAX_WAITING                book lookups waiting for one of them; more\n"
      "                                   are answered 503 at once (default 256)\n"
      "  ORDERS_DB_POOL_SIZE              database connections, shared by the loops (default 4)\n"
      "  ORDERS_THREADS                   event loops serving requests (default: one per CPU)\n"
      "  ORDERS_DB_TIMEOUT_MS             deadline of one database query (default 5000)\n"
      "  ORDERS_DB_PIPELINE_DEPTH         reads in flight on one connection (default 32)\n"
      "  IDEMPOTENCY_KEY_RETENTION_HOURS  how long Idempotency-Keys are kept (default 24)\n"
      "  REDIS_HOST, REDIS_PORT           Redis for order events (127.0.0.1:6379)\n"
      "  REDIS_USERNAME, REDIS_PASSWORD_FILE  its ACL user and password file (or the\n"
      "                                   credential redis-password)\n"
      "  ORDERS_RELAY_INTERVAL_MS         how often the outbox is checked for events\n"
      "                                   to publish (default 1000)\n"
      "  ORDERS_CONSUMER_NAME             consumer name in the bookstore-orders group\n"
      "                                   (default <hostname>-<pid>)\n"
      "  ORDERS_CLAIM_IDLE_MS             status entries pending this long with a dead\n"
      "                                   consumer are taken over (default 30000)\n"
      "  ORDERS_STREAM_RETENTION_MS       order events every group has acknowledged are\n"
      "                                   trimmed from Redis after this (default 60000)\n"
      "  HTTP_REQUEST_TIMEOUT_MS          deadline to receive a request, and keep-alive\n"
      "                                   idle limit (default 15000)\n"
      "  API_TOKENS_FILE                  name:sha256 lines; set (or credential api-tokens),\n"
      "                                   writes and reading orders need a bearer token\n"
      "                                   (SIGHUP re-reads it)\n";

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OrdersApp) app = NULL;
  BsMainOptions options = { 0 };
  guint n_applied = 0;
  int status = bs_main_parse_options ("bookstore-orders", "- the Bookstore Orders service",
                                      environment_help, &argc, &argv, &options);

  if (status >= 0)
    return status;
  app = orders_app_new (&error);
  if (app == NULL)
    return bs_main_failed ("cannot start", error);
  if (options.migrate)
    return orders_app_migrate (app, &n_applied, &error)
               ? bs_main_migrated (n_applied)
               : bs_main_failed ("migration failed", error);
  if (!orders_app_start (app, &error))
    return bs_main_failed ("cannot start", error);
  return orders_app_run (app);
}
