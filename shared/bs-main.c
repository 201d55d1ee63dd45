/* bs-main.c: option parsing and exit statuses shared by the daemons. */
#include "bs-main.h"

#include "bs-build-config.h"
#include "bs-config.h"
#include "bs-error.h"
#include "bs-log.h"
#include "bs-tls.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

int
bs_main_parse_options (const char *name, const char *summary, const char *environment_help,
                       int *argc, char ***argv, BsMainOptions *options)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *description = NULL;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { "migrate", 0, 0, G_OPTION_ARG_NONE, &options->migrate,
      "Apply pending database migrations and exit (run as the schema owner)", NULL },
    { NULL },
  };

  setlocale (LC_ALL, "");
  /* TLS 1.2 at least, as a server and as a client (glib-networking's GnuTLS
   * would also speak 1.0 and 1.1). Set here, before any thread exists; an
   * operator's own value wins. */
  g_setenv ("G_TLS_GNUTLS_PRIORITY", BS_TLS_GNUTLS_PRIORITY, FALSE);
  context = g_option_context_new (summary);
  g_option_context_add_main_entries (context, entries, NULL);
  description = g_strconcat ("Configuration comes from the environment:\n", environment_help,
                             "Under systemd it supports Type=notify, WatchdogSec= and socket "
                             "activation.\n",
                             NULL);
  g_option_context_set_description (context, description);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return EXIT_FAILURE;
    }
  if (version)
    {
      printf ("%s %s\n", name, BS_VERSION);
      return EXIT_SUCCESS;
    }
  bs_log_init ();
  return -1;
}

int
bs_main_failed (const char *what, const GError *error)
{
  g_warning ("%s: %s", what, error->message);
  return g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG) ? BS_EXIT_CONFIG : EXIT_FAILURE;
}

int
bs_main_migrated (guint n_applied)
{
  g_message ("database schema up to date (%u migrations applied now)", n_applied);
  return EXIT_SUCCESS;
}
