/* bs-config.c: read and check environment variables; errors name the variable. */
#include "bs-config.h"

#include "bs-error.h"

#include <stdlib.h>
#include <string.h>

gboolean
bs_config_get_string (const char *name, const char *fallback, char **out, GError **error)
{
  const char *value = g_getenv (name);
  g_autofree char *stripped = NULL;

  if (value != NULL)
    stripped = g_strstrip (g_strdup (value));
  if (stripped == NULL || *stripped == '\0')
    {
      if (fallback == NULL)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s is required but not set", name);
          return FALSE;
        }
      *out = g_strdup (fallback);
      return TRUE;
    }
  *out = g_steal_pointer (&stripped);
  return TRUE;
}

gboolean
bs_config_get_uint (const char *name, guint fallback, guint min, guint max, guint *out,
                    GError **error)
{
  const char *value = g_getenv (name);
  guint64 parsed = 0;
  g_autoptr (GError) local_error = NULL;

  if (value == NULL || *value == '\0')
    {
      *out = fallback;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (value, 10, min, max, &parsed, &local_error))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s=\"%s\" is invalid: expected an integer from %u to %u", name, value, min,
                   max);
      return FALSE;
    }
  *out = (guint) parsed;
  return TRUE;
}

gboolean
bs_config_get_threads (const char *name, guint *out, GError **error)
{
  guint cpus = CLAMP (g_get_num_processors (), 1, BS_CONFIG_MAX_THREADS);

  return bs_config_get_uint (name, cpus, 1, BS_CONFIG_MAX_THREADS, out, error);
}

gboolean
bs_config_get_port (const char *name, guint16 fallback, guint16 *out, GError **error)
{
  guint port = 0;

  if (!bs_config_get_uint (name, fallback, 1, 65535, &port, error))
    return FALSE;
  *out = (guint16) port;
  return TRUE;
}
