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

G_END_DECLS
