/* ctl-main.c: bookstorectl — look at and repair a Bookstore installation.
 * Global options, then a command; see bookstorectl(8). */
#include "ctl.h"

#include "bs-build-config.h"
#include "bs-error.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 5000

static const char usage_text[]
    = "Usage: bookstorectl [--json] [--config-dir DIR] [--timeout SECONDS] COMMAND [ARGS]\n"
      "\n"
      "Commands:\n"
      "  status                       units, health endpoints, PostgreSQL, Redis, outbox,\n"
      "                               stream lag and pending per consumer group\n"
      "  order ID                     an order and its timeline (streams, journal)\n"
      "  dead-letters list [STREAM]   dead-lettered entries and why\n"
      "  dead-letters show ID         every field of one\n"
      "  dead-letters retry ID        put it back on its stream, exactly once\n"
      "  dead-letters drop ID         delete it\n"
      "  outbox                       order events waiting for Redis\n"
      "  idempotency purge --older-than DURATION   delete old Idempotency-Keys\n"
      "\n"
      "Options:\n"
      "  --json             print one JSON document\n"
      "  --config-dir DIR   the env files' directory (default $BOOKSTORE_CONFIG_DIR, else\n"
      "                     /etc/bookstore)\n"
      "  --timeout SECONDS  for every connection, query and request (default 5)\n"
      "  --version, --help\n"
      "\n"
      "Exit status: 0 healthy/done; 1 unhealthy, not found or refused; 64 usage;\n"
      "69 Redis or PostgreSQL unavailable; 78 configuration unreadable or invalid.\n";

static const struct
{
  const char *name;
  CtlCommandFunc func;
} commands[] = {
  { "status", ctl_status },
  { "order", ctl_order },
  { "dead-letters", ctl_dead_letters },
  { "outbox", ctl_outbox },
  { "idempotency", ctl_idempotency },
};

static gboolean
parse_timeout (const char *text, guint *out_ms)
{
  double seconds;
  char *end = NULL;

  seconds = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0' || !(seconds >= 0.1 && seconds <= 3600))
    return FALSE;
  *out_ms = (guint) (seconds * 1000);
  return TRUE;
}

/* Takes the global options out of @argv wherever they are (before "--"),
 * leaving the command and its arguments. -1 to go on, else an exit status. */
static int
parse_globals (int *argc, char **argv, Ctl *ctl, const char **config_dir)
{
  int kept = 1;
  gboolean rest = FALSE;

  for (int i = 1; i < *argc; i++)
    {
      const char *arg = argv[i];
      const char *value = NULL;

      if (rest || strcmp (arg, "--") == 0)
        {
          if (rest || i + 1 < *argc)
            argv[kept++] = argv[i];
          rest = TRUE;
          continue;
        }
      if (strcmp (arg, "--json") == 0)
        ctl->json = TRUE;
      else if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          fputs (usage_text, stdout);
          return CTL_EXIT_OK;
        }
      else if (strcmp (arg, "--version") == 0)
        {
          printf ("bookstorectl %s\n", BS_VERSION);
          return CTL_EXIT_OK;
        }
      else if (g_str_has_prefix (arg, "--config-dir") || g_str_has_prefix (arg, "--timeout"))
        {
          const char *eq = strchr (arg, '=');
          gboolean is_dir = g_str_has_prefix (arg, "--config-dir");

          if (strcmp (arg, is_dir ? "--config-dir" : "--timeout") == 0 && i + 1 < *argc)
            value = argv[++i];
          else if (eq != NULL
                   && (size_t) (eq - arg) == strlen (is_dir ? "--config-dir" : "--timeout"))
            value = eq + 1;
          else
            return ctl_usage_error ("%s needs a value", arg);
          if (is_dir)
            *config_dir = value;
          else if (!parse_timeout (value, &ctl->timeout_ms))
            return ctl_usage_error ("--timeout must be seconds between 0.1 and 3600, not %s",
                                    value);
        }
      else
        argv[kept++] = argv[i];
    }
  argv[kept] = NULL;
  *argc = kept;
  return -1;
}

int
main (int argc, char **argv)
{
  Ctl ctl = { .timeout_ms = DEFAULT_TIMEOUT_MS };
  const char *config_dir = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlConfig) config = NULL;
  int status;

  setlocale (LC_ALL, "");
  status = parse_globals (&argc, argv, &ctl, &config_dir);
  if (status >= 0)
    return status;
  if (argc < 2)
    return ctl_usage_error ("a command is needed");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (strcmp (argv[1], commands[i].name) != 0)
        continue;
      config = ctl_config_load (config_dir, &error);
      if (config == NULL)
        return ctl_fail (&ctl, CTL_EXIT_CONFIG, "%s", error->message);
      ctl.config = config;
      return commands[i].func (&ctl, argc - 1, argv + 1);
    }
  return ctl_usage_error ("unknown command '%s'", argv[1]);
}
