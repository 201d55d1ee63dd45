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
  PQconninfoFree (options);
  *out = g_steal_pointer (&dsn);
  return TRUE;
}
