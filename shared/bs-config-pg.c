/* bs-config-pg.c: the PostgreSQL connection string check, apart from
 * bs-config.c so that a daemon without a database does not link libpq. */
#include "bs-config.h"

#include "bs-error.h"

#include <libpq-fe.h>

/* Replace every "quoted part" with "…" and trim. */
static char *
redact_quoted (const char *text)
{
  GString *out = g_string_new (NULL);
  gboolean quoted = FALSE;

  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '"')
        {
          if (!quoted)
            g_string_append (out, "\"…\"");
          quoted = !quoted;
        }
      else if (!quoted)
        g_string_append_c (out, *p);
    }
  return g_strstrip (g_string_free (out, FALSE));
}

static guint
list_length (const char *value)
{
  guint n = 1;

  for (const char *p = value; *p != '\0'; p++)
    n += *p == ',';
  return n;
}

/* What libpq checks only when it connects, checked at startup: the host,
 * hostaddr and port lists match, and target_session_attrs is one it knows. */
static gboolean
check_hosts (const char *name, const PQconninfoOption *options, GError **error)
{
  static const char *const attrs[]
      = { "any", "read-write", "read-only", "primary", "standby", "prefer-standby", NULL };
  const char *host = NULL, *hostaddr = NULL, *port = NULL, *tsa = NULL;
  guint n_hosts;

  for (const PQconninfoOption *o = options; o->keyword != NULL; o++)
    {
      if (o->val == NULL || o->val[0] == '\0')
        continue;
      if (g_str_equal (o->keyword, "host"))
        host = o->val;
      else if (g_str_equal (o->keyword, "hostaddr"))
        hostaddr = o->val;
      else if (g_str_equal (o->keyword, "port"))
        port = o->val;
      else if (g_str_equal (o->keyword, "target_session_attrs"))
        tsa = o->val;
    }
  n_hosts = hostaddr != NULL ? list_length (hostaddr) : host != NULL ? list_length (host) : 1;
  if (host != NULL && hostaddr != NULL && list_length (host) != list_length (hostaddr))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s lists %u hosts and %u hostaddr values: they must match", name,
                   list_length (host), list_length (hostaddr));
      return FALSE;
    }
  if (port != NULL && list_length (port) != 1 && list_length (port) != n_hosts)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s lists %u hosts and %u ports: give one port, or one per host", name, n_hosts,
                   list_length (port));
      return FALSE;
    }
  if (tsa != NULL && !g_strv_contains (attrs, tsa))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s: target_session_attrs must be one of any, read-write, read-only, primary, "
                   "standby or prefer-standby",
                   name);
      return FALSE;
    }
  return TRUE;
}

gboolean
bs_config_get_pg_dsn (const char *name, char **out, GError **error)
{
  g_autofree char *dsn = NULL;
  char *errmsg = NULL;
  PQconninfoOption *options = NULL;

  if (!bs_config_get_string (name, NULL, &dsn, error))
    return FALSE;
  options = PQconninfoParse (dsn, &errmsg);
  if (options == NULL)
    {
      /* libpq quotes the offending part of the DSN, which may be a password */
      g_autofree char *reason = redact_quoted (errmsg != NULL ? errmsg : "out of memory");
      PQfreemem (errmsg);
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s is not a valid PostgreSQL connection string "
                   "(postgresql://user:password@host:port/dbname"
                   " or key=value pairs): %s",
                   name, reason);
      return FALSE;
    }
  if (!check_hosts (name, options, error))
    {
      PQconninfoFree (options);
      return FALSE;
    }
  PQconninfoFree (options);
  *out = g_steal_pointer (&dsn);
  return TRUE;
}
