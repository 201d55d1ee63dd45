/* worker-main.c: bookstore-worker — background jobs from Redis Streams. */
#include "worker-app.h"

#include "bs-main.h"

static const char environment_help[]
    = "  REDIS_HOST, REDIS_PORT           Redis (127.0.0.1:6379)\n"
      "  REDIS_USERNAME, REDIS_PASSWORD_FILE  its ACL user and password file (or the\n"
      "                                   credential redis-password)\n"
      "  REDIS_COMMAND_TIMEOUT_MS         a Redis command without a reply after this\n"
      "                                   drops the connection (default 5000)\n"
      "  WORKER_NAME                      consumer name in the group (default <host>-<pid>)\n"
      "  WORKER_CONCURRENCY               jobs in flight per queue (default 5)\n"
      "  WORKER_METRICS_PORT              port of /metrics, /health, /livez (default 9100)\n"
      "  BIND_ADDRESS                     IP address of that port (default 0.0.0.0)\n"
      "  WORKER_BLOCK_MS                  XREADGROUP BLOCK time (default 2000)\n"
      "  WORKER_CLAIM_IDLE_MS             a job pending this long is taken over and\n"
      "                                   retried (default 30000)\n"
      "  WORKER_MAX_DELIVERIES            deliveries before <stream>:dead (default 5)\n"
      "  WORKER_STREAM_RETENTION_MS       entries every group has acknowledged are\n"
      "                                   trimmed after this (default 60000)\n"
      "  WORKER_RESULTS_MAX_ENTRIES       bookstore:order-results keeps this many\n"
      "                                   (default 100000, the most)\n"
      "  WORKER_DEAD_MAX_ENTRIES          each <stream>:dead keeps this many (default\n"
      "                                   10000)\n"
      "  ORDERS_API_URL                   bookstore-orders (default http://127.0.0.1:8082)\n"
      "  ORDERS_HTTP_RETRIES              retries of one order creation (default 3)\n"
      "  ORDERS_HTTP_TIMEOUT_MS           deadline of one call to Orders (default 5000)\n"
      "  ORDERS_CA_FILE                   CA of Orders' certificate for https:// (default:\n"
      "                                   the system's trust store)\n"
      "  ORDERS_API_TOKEN_FILE            the worker's token for Orders (or credential\n"
      "                                   orders-api-token; SIGHUP re-reads it)\n"
      "  WORKER_STEP_DELAY_MS             duration of each simulated step (default 10)\n"
      "  WORKER_DONE_TTL_S                an order's done mark (dropping a duplicate\n"
      "                                   event) lasts this long (default 86400)\n"
      "  WORKER_STOCK_LIMIT               larger quantities fail the inventory check\n"
      "                                   (default 1000)\n"
      "  NOTIFY_RECIPIENT                 recipient of notifications (default\n"
      "                                   orders@localhost)\n"
      "  HTTP_REQUEST_TIMEOUT_MS          deadline to receive a request (default 15000)\n";

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (WorkerApp) app = NULL;
  BsMainOptions options = { 0 };
  int status = bs_main_parse_options ("bookstore-worker", "- the Bookstore background worker",
                                      environment_help, &argc, &argv, &options);

  if (status >= 0)
    return status;
  if (options.migrate)
    {
      g_message ("bookstore-worker has no database: nothing to migrate");
      return 0;
    }
  app = worker_app_new (&error);
  if (app == NULL)
    return bs_main_failed ("cannot start", error);
  if (!worker_app_start (app, &error))
    return bs_main_failed ("cannot start", error);
  return worker_app_run (app);
}
