/* books-main.c: bookstore-books — the Books REST service. */
#include "books-app.h"

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
  g_autoptr (BooksApp) app = NULL;
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
  context = g_option_context_new ("- the Bookstore Books service");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (
      context, "Configuration comes from the environment:\n"
               "  BOOKS_DB_DSN              PostgreSQL DSN, URI or key=value (required)\n"
               "  PORT                      TCP port to listen on (default 8001)\n"
               "  BIND_ADDRESS              IP address to listen on (default 0.0.0.0)\n"
               "  BOOKS_DB_POOL_SIZE        database connections (default 4)\n"
               "  BOOKS_DB_TIMEOUT_MS       deadline of one database query (default 5000)\n"
               "  HTTP_REQUEST_TIMEOUT_MS   deadline to receive a request, and keep-alive\n"
               "                            idle limit (default 15000)\n"
               "Under systemd it supports Type=notify, WatchdogSec= and socket activation.\n");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return EXIT_FAILURE;
    }
  if (version)
    {
      printf ("bookstore-books %s\n", BS_VERSION);
      return EXIT_SUCCESS;
    }

  bs_log_init ();
  app = books_app_new (&error);
  if (app != NULL && migrate)
    {
      if (!books_app_migrate (app, &n_applied, &error))
        {
          g_warning ("migration failed: %s", error->message);
          return EXIT_FAILURE;
        }
      g_message ("database schema up to date (%u migrations applied now)", n_applied);
      return EXIT_SUCCESS;
    }
  if (app == NULL || !books_app_start (app, &error))
    {
      g_warning ("cannot start: %s", error->message);
      return g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG) ? BS_EXIT_CONFIG : EXIT_FAILURE;
    }
  return books_app_run (app);
}
