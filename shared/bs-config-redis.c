/* bs-config-redis.c: where Redis is and whom to log in as (REDIS_*). The
 * password is read here and handed to BsRedis; no message ever holds it:
 * errors name the file or the variable, never what they contain. */
#include "bs-config.h"

#include "bs-auth-table.h"
#include "bs-error.h"
#include "bs-redis.h"

#include <string.h>

/* The password of the file or credential (NULL: neither is configured). */
static gboolean
read_password_file (BsConfigRedis *config, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *what = NULL;
  g_autofree char *source = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  path = bs_auth_secret_path (BS_CONFIG_REDIS_PASSWORD_FILE, BS_CONFIG_REDIS_CREDENTIAL, &source,
                              &local_error);
  if (path == NULL && local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (path == NULL)
    return TRUE;
  if (!g_file_get_contents (path, &text, &len, &local_error))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "the Redis password (%s): %s", source,
                   local_error->message);
      return FALSE;
    }
  what = g_strdup_printf ("the Redis password (%s)", source);
  config->password = bs_auth_token_from_text (what, text, len, error);
  if (text != NULL)
    memset (text, 0, len);
  if (config->password == NULL)
    return FALSE;
  config->password_source = g_steal_pointer (&source);
  return TRUE;
}

static gboolean
is_set (const char *name)
{
  const char *value = g_getenv (name);

  return value != NULL && *value != '\0';
}

/* REDIS_SENTINELS and REDIS_MASTER_NAME: both, or neither. */
static gboolean
read_sentinels (BsConfigRedis *config, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *list = NULL;
  g_autofree char *name = NULL;

  if (!bs_config_get_string ("REDIS_SENTINELS", "", &list, error)
      || !bs_config_get_string ("REDIS_MASTER_NAME", "", &name, error))
    return FALSE;
  g_strstrip (list);
  g_strstrip (name);
  if (*list == '\0' && *name == '\0')
    return TRUE;
  if (*list == '\0' || *name == '\0')
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s is set but not %s: Sentinel needs both (or neither)",
                   *list != '\0' ? "REDIS_SENTINELS" : "REDIS_MASTER_NAME",
                   *list != '\0' ? "REDIS_MASTER_NAME" : "REDIS_SENTINELS");
      return FALSE;
    }
  if (is_set ("REDIS_HOST") || is_set ("REDIS_PORT"))
    {
      const char *which = is_set ("REDIS_HOST") ? "REDIS_HOST" : "REDIS_PORT";

      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s and REDIS_SENTINELS are both set: with Sentinel the master's address "
                   "comes from the sentinels; unset %s",
                   which, which);
      return FALSE;
    }
  for (const char *c = name; *c != '\0'; c++)
    if (*c < 0x21 || *c > 0x7e)
      {
        g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                     "REDIS_MASTER_NAME is invalid: visible ASCII characters only");
        return FALSE;
      }
  config->sentinels = bs_redis_parse_sentinels (list, &local_error);
  if (config->sentinels == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "REDIS_SENTINELS is invalid: %s",
                   local_error->message);
      return FALSE;
    }
  config->master_name = g_steal_pointer (&name);
  return TRUE;
}

gboolean
bs_config_get_redis (BsConfigRedis *config, GError **error)
{
  g_autofree char *env_password = NULL;

  memset (config, 0, sizeof *config);
  if (!read_sentinels (config, error)
      || !bs_config_get_string ("REDIS_HOST", "127.0.0.1", &config->host, error)
      || !bs_config_get_port ("REDIS_PORT", 6379, &config->port, error)
      || !bs_config_get_string ("REDIS_USERNAME", "", &config->username, error)
      || !bs_config_get_string ("REDIS_PASSWORD", "", &env_password, error)
      || !read_password_file (config, error))
    return FALSE;
  if (config->password != NULL && *env_password != '\0')
    {
      if (g_getenv (BS_CONFIG_REDIS_PASSWORD_FILE) != NULL
          && *g_getenv (BS_CONFIG_REDIS_PASSWORD_FILE) != '\0')
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "REDIS_PASSWORD and %s are both set: give the password once, in the file",
                       BS_CONFIG_REDIS_PASSWORD_FILE);
          return FALSE;
        }
      config->env_password_ignored = TRUE; /* the credential wins */
    }
  if (config->password == NULL && *env_password != '\0')
    {
      config->password = g_steal_pointer (&env_password);
      config->password_source = g_strdup ("REDIS_PASSWORD");
    }
  if (*config->username != '\0' && config->password == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "REDIS_USERNAME=%s needs a password: REDIS_PASSWORD_FILE or the credential %s",
                   config->username, BS_CONFIG_REDIS_CREDENTIAL);
      return FALSE;
    }
  return TRUE;
}

void
bs_redis_options_set_config (BsRedisOptions *options, const BsConfigRedis *config)
{
  options->host = config->host;
  options->port = config->port;
  options->username = config->username;
  options->password = config->password;
  options->sentinels = (const char *const *) config->sentinels;
  options->master_name = config->master_name;
}

void
bs_config_redis_clear (BsConfigRedis *config)
{
  g_clear_pointer (&config->host, g_free);
  g_clear_pointer (&config->username, g_free);
  if (config->password != NULL)
    memset (config->password, 0, strlen (config->password));
  g_clear_pointer (&config->password, g_free);
  g_clear_pointer (&config->password_source, g_free);
  g_clear_pointer (&config->sentinels, g_strfreev);
  g_clear_pointer (&config->master_name, g_free);
}
