/* orders-main.c: bookstore-orders — the Orders REST service. */
#include "orders-app.h"

#include "bs-build-config.h"
#include "bs-config.h"
#include "bs-error.h"
#include "bs-log.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (OrdersApp) app = NULL;
  gboolean version = FALSE;
  gboolean migrate = FALSE;
  guint n_applied = 0;
  const GOptionEntry entries[] = {
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { "migrate", 0, 0, G_OPTION_ARG_NONE, &migrate,
      "Apply pending database migrations and exit (run as the schema owner)", NULL },
    { NULL },
  };

  setlocale (LC_ALL, "");
  context = g_option_context_new ("- the Bookstore Orders service");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (
      context,
      "Configuration comes from the environment:\n"
      "  DATABASE_URL                     PostgreSQL DSN, URI or key=value (required)\n"
      "  BOOKS_SERVICE_URL                base URL of bookstore-books (required)\n"
      "  PORT                             TCP port to listen on (default 8082)\n"
      "  BIND_ADDRESS                     IP address to listen on (default 0.0.0.0)\n"
      "  BOOKS_TIMEOUT_MS                 deadline of one call to Books (default 2000)\n"
      "  BOOKS_CIRCUIT_FAILURE_THRESHOLD  consecutive Books failures that open the\n"
      "                                   circuit (default 5)\n"
      "  BOOKS_CIRCUIT_COOLDOWN_MS        how long the circuit stays open before one\n"
      "                                   probe (default 10000)\n"
      "  BOOKS_MAX_CONNECTIONS            keep-alive connections to Books (default 64)\n"
      "  ORDERS_DB_POOL_SIZE              database connections (default 4)\n"
      "  ORDERS_DB_TIMEOUT_MS             deadline of one database query (default 5000)\n"
      "  IDEMPOTENCY_KEY_RETENTION_HOURS  how long Idempotency-Keys are kept (default 24)\n"
      "  REDIS_HOST, REDIS_PORT, REDIS_PASSWORD  Redis for order events (127.0.0.1:6379)\n"
      "  HTTP_REQUEST_TIMEOUT_MS          deadline to receive a request, and keep-alive\n"
      "                                   idle limit (default 15000)\n"
      "Under systemd it supports Type=notify, WatchdogSec= and socket activation.\n");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return EXIT_FAILURE;
    }
  if (version)
    {
      printf ("bookstore-orders %s\n", BS_VERSION);
      return EXIT_SUCCESS;
    }

  bs_log_init ();
  app = orders_app_new (&error);
  if (app != NULL && migrate)
    {
      if (!orders_app_migrate (app, &n_applied, &error))
        {
          g_warning ("migration failed: %s", error->message);
          return EXIT_FAILURE;
        }
      g_message ("database schema up to date (%u migrations applied now)", n_applied);
      return EXIT_SUCCESS;
    }
  if (app == NULL || !orders_app_start (app, &error))
    {
      g_warning ("cannot start: %s", error->message);
      return g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG) ? BS_EXIT_CONFIG : EXIT_FAILURE;
    }
  return orders_app_run (app);
}
