/* bs-main.h: what every daemon's main() does before and after its own app:
 * command-line options, logging, exit statuses. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gboolean migrate; /* --migrate: apply migrations and exit */
} BsMainOptions;

/* Parse --help, --version and --migrate for daemon @name; @summary follows
 * the name in --help, @environment_help lists the variables it reads. Sets
 * up logging. Returns -1 to go on, else the exit status to return now. */
int bs_main_parse_options (const char *name, const char *summary, const char *environment_help,
                           int *argc, char ***argv, BsMainOptions *options);

/* Log why the daemon cannot start (or migrate); the exit status: 78 for bad
 * configuration, 1 otherwise. */
int bs_main_failed (const char *what, const GError *error);

/* Log the result of --migrate; the exit status. */
int bs_main_migrated (guint n_applied);

G_END_DECLS
