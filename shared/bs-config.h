/* bs-config.h: configuration from the environment, validated up front. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit status for bad configuration (sysexits.h EX_CONFIG). */
#define BS_EXIT_CONFIG 78

/* The value of @name, or @fallback when unset or empty. With @fallback NULL
 * the variable is required: unset or blank is a BS_ERROR_CONFIG naming it. */
gboolean bs_config_get_string (const char *name, const char *fallback, char **out, GError **error);

/* An unsigned integer within [@min, @max]; @fallback when unset. */
gboolean bs_config_get_uint (const char *name, guint fallback, guint min, guint max, guint *out,
                             GError **error);

/* A TCP port 1..65535; @fallback when unset. */
gboolean bs_config_get_port (const char *name, guint16 fallback, guint16 *out, GError **error);

/* How many event loops serve requests: 1..BS_CONFIG_MAX_THREADS; by
 * default the CPUs this process may run on (its affinity mask). */
#define BS_CONFIG_MAX_THREADS 64
gboolean bs_config_get_threads (const char *name, guint *out, GError **error);

/* A PostgreSQL connection string (postgresql:// URI or key=value) that libpq
 * can parse. Required. */
gboolean bs_config_get_pg_dsn (const char *name, char **out, GError **error);

/* Where Redis is and whom to log in as: REDIS_HOST (127.0.0.1), REDIS_PORT
 * (6379), REDIS_USERNAME (an ACL user; empty: the default user) and the
 * password, read from the file REDIS_PASSWORD_FILE names, else from the
 * systemd credential redis-password ($CREDENTIALS_DIRECTORY/redis-password),
 * else from REDIS_PASSWORD (kept for old configurations: the environment is
 * no place for a secret). A file must hold one word. REDIS_PASSWORD_FILE
 * and REDIS_PASSWORD both set, or a user without a password, is
 * BS_ERROR_CONFIG; the credential and REDIS_PASSWORD: the credential is
 * used and @env_password_ignored set, for the caller to warn.
 * Messages name where the password came from, never the password.
 *
 * Through Sentinel: REDIS_SENTINELS (host:port,...; port 26379 by default)
 * and REDIS_MASTER_NAME, both or neither. Then the master's address comes
 * from the sentinels, and REDIS_HOST or REDIS_PORT set as well is
 * BS_ERROR_CONFIG (one of the two would be ignored). The sentinels are
 * asked without a login: REDIS_USERNAME and the password are the master's. */
#define BS_CONFIG_REDIS_PASSWORD_FILE "REDIS_PASSWORD_FILE"
#define BS_CONFIG_REDIS_CREDENTIAL "redis-password"
typedef struct
{
  char *host;
  guint16 port;
  char *username;        /* "" for the default user */
  char *password;        /* NULL for none */
  char *password_source; /* "REDIS_PASSWORD_FILE=/path", "credential redis-password", ... */
  gboolean env_password_ignored;
  GStrv sentinels;   /* NULL without Sentinel; entries "host:port" */
  char *master_name; /* NULL without Sentinel */
} BsConfigRedis;

gboolean bs_config_get_redis (BsConfigRedis *config, GError **error);
/* Frees the strings (the password overwritten first); @config may be cleared twice. */
void bs_config_redis_clear (BsConfigRedis *config);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BsConfigRedis, bs_config_redis_clear)

G_END_DECLS
