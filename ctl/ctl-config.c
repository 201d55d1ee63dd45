/* ctl-config.c: KEY=VALUE files as systemd's EnvironmentFile= reads them:
 * blank lines and lines starting with # or ; are skipped, whitespace around
 * the key and the value is dropped, and a value in matching single or
 * double quotes loses them. The defaults are the units' Environment= lines. */
#include "ctl-config.h"

#include "bs-error.h"

#include <errno.h>
#include <string.h>

#define DEFAULT_CONFIG_DIR CTL_SYSCONFDIR "/bookstore"

struct _CtlConfig
{
  char *dir;
  GHashTable *values[CTL_N_SERVICES]; /* NULL: no file */
};

static const char *const service_names[CTL_N_SERVICES] = { "books", "orders", "worker" };

/* The units' Environment= defaults (data/systemd/bookstore-*.service.in). */
static const struct
{
  CtlService service;
  const char *key;
  const char *value;
} unit_defaults[] = {
  { CTL_SERVICE_BOOKS, "BOOKS_DB_DSN", "host=/var/run/postgresql dbname=books_db" },
  { CTL_SERVICE_BOOKS, "PORT", "8001" },
  { CTL_SERVICE_ORDERS, "DATABASE_URL", "host=/var/run/postgresql dbname=orders_db" },
  { CTL_SERVICE_ORDERS, "PORT", "8082" },
  { CTL_SERVICE_ORDERS, "REDIS_HOST", "127.0.0.1" },
  { CTL_SERVICE_ORDERS, "REDIS_PORT", "6379" },
  { CTL_SERVICE_WORKER, "WORKER_METRICS_PORT", "9100" },
};

const char *
ctl_service_name (CtlService service)
{
  g_return_val_if_fail (service < CTL_N_SERVICES, NULL);
  return service_names[service];
}

static char *
unquote (char *value)
{
  gsize len;

  g_strstrip (value);
  len = strlen (value);
  if (len >= 2 && (value[0] == '"' || value[0] == '\'') && value[len - 1] == value[0])
    {
      value[len - 1] = '\0';
      return value + 1;
    }
  return value;
}

static GHashTable *
parse_env_file (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GHashTable) values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *eq;

      if (*line == '\0' || *line == '#' || *line == ';')
        continue;
      eq = strchr (line, '=');
      if (eq == NULL)
        continue; /* systemd ignores such a line too */
      *eq = '\0';
      g_hash_table_replace (values, g_strdup (g_strstrip (line)), g_strdup (unquote (eq + 1)));
    }
  return g_steal_pointer (&values);
}

CtlConfig *
ctl_config_load (const char *dir, GError **error)
{
  g_autoptr (CtlConfig) config = g_new0 (CtlConfig, 1);

  if (dir == NULL)
    dir = g_getenv ("BOOKSTORE_CONFIG_DIR");
  config->dir = g_strdup (dir != NULL && *dir != '\0' ? dir : DEFAULT_CONFIG_DIR);
  for (guint s = 0; s < CTL_N_SERVICES; s++)
    {
      g_autofree char *name = g_strconcat (service_names[s], ".env", NULL);
      g_autofree char *path = g_build_filename (config->dir, name, NULL);
      g_autoptr (GError) local_error = NULL;

      config->values[s] = parse_env_file (path, &local_error);
      if (config->values[s] == NULL
          && !g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "%s (run as root or as a member of the group bookstore)",
                       local_error->message);
          return NULL;
        }
    }
  return g_steal_pointer (&config);
}

void
ctl_config_free (CtlConfig *config)
{
  if (config == NULL)
    return;
  for (guint s = 0; s < CTL_N_SERVICES; s++)
    g_clear_pointer (&config->values[s], g_hash_table_unref);
  g_free (config->dir);
  g_free (config);
}

const char *
ctl_config_dir (const CtlConfig *config)
{
  return config->dir;
}

gboolean
ctl_config_has (const CtlConfig *config, CtlService service)
{
  return config->values[service] != NULL;
}

const char *
ctl_config_get (const CtlConfig *config, CtlService service, const char *key)
{
  const char *value = NULL;

  if (config->values[service] != NULL)
    value = g_hash_table_lookup (config->values[service], key);
  if (value != NULL)
    return value;
  for (gsize i = 0; i < G_N_ELEMENTS (unit_defaults); i++)
    if (unit_defaults[i].service == service && strcmp (unit_defaults[i].key, key) == 0)
      return unit_defaults[i].value;
  return NULL;
}

char *
ctl_config_url (const CtlConfig *config, CtlService service, const char *path)
{
  const char *port = ctl_config_get (
      config, service, service == CTL_SERVICE_WORKER ? "WORKER_METRICS_PORT" : "PORT");
  const char *bind = ctl_config_get (config, service, "BIND_ADDRESS");
  const char *cert = ctl_config_get (config, service, "TLS_CERT_FILE");
  const char *scheme = cert != NULL && *cert != '\0' ? "https" : "http";
  const char *host = "127.0.0.1";

  /* a daemon listening on every address answers on loopback */
  if (bind != NULL && *bind != '\0' && strcmp (bind, "0.0.0.0") != 0)
    host = strcmp (bind, "::") == 0 ? "::1" : bind;
  if (port == NULL)
    port = service == CTL_SERVICE_BOOKS ? "8001" : service == CTL_SERVICE_ORDERS ? "8082" : "9100";
  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("%s://[%s]:%s%s", scheme, host, port, path);
  return g_strdup_printf ("%s://%s:%s%s", scheme, host, port, path);
}

static const char *const redis_variables[]
    = { "REDIS_HOST",          "REDIS_PORT",      "REDIS_USERNAME",    "REDIS_PASSWORD",
        "REDIS_PASSWORD_FILE", "REDIS_SENTINELS", "REDIS_MASTER_NAME", "CREDENTIALS_DIRECTORY" };

/* bs_config_get_redis() reads the environment: this process's own is
 * replaced by the file's values for the call (a command-line tool, one
 * thread), so that the checks and messages are the daemons' own. */
gboolean
ctl_config_redis (const CtlConfig *config, BsConfigRedis *redis, char **who, GError **error)
{
  CtlService service
      = ctl_config_has (config, CTL_SERVICE_WORKER) ? CTL_SERVICE_WORKER : CTL_SERVICE_ORDERS;
  g_autofree char *ctl_password = g_build_filename (config->dir, "redis", "ctl.password", NULL);
  gboolean as_ctl = g_file_test (ctl_password, G_FILE_TEST_EXISTS);

  for (gsize i = 0; i < G_N_ELEMENTS (redis_variables); i++)
    g_unsetenv (redis_variables[i]);
  /* where: REDIS_HOST and REDIS_PORT, or the sentinels and the master's name */
  for (gsize i = 0; i < 7; i++)
    {
      const char *value = ctl_config_get (config, service, redis_variables[i]);

      if (value != NULL && (i < 2 || i >= 5))
        g_setenv (redis_variables[i], value, TRUE);
    }
  if (as_ctl)
    {
      g_setenv ("REDIS_USERNAME", "bookstore-ctl", TRUE);
      g_setenv ("REDIS_PASSWORD_FILE", ctl_password, TRUE);
    }
  else
    for (gsize i = 2; i < 5; i++)
      {
        const char *value = ctl_config_get (config, service, redis_variables[i]);

        if (value != NULL)
          g_setenv (redis_variables[i], value, TRUE);
      }
  if (!bs_config_get_redis (redis, error))
    {
      g_prefix_error (error, "%s: ", as_ctl ? ctl_password : service_names[service]);
      return FALSE;
    }
  *who = as_ctl ? g_strdup_printf ("bookstore-ctl (%s)", ctl_password)
         : *redis->username != '\0'
             ? g_strdup_printf ("%s (%s.env)", redis->username, service_names[service])
             : g_strdup ("default");
  return TRUE;
}
