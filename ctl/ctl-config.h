/* ctl-config.h: the configuration files of the units, read as systemd
 * reads an EnvironmentFile=, with the defaults the units set. */
#pragma once

#include "bs-config.h"

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  CTL_SERVICE_BOOKS,
  CTL_SERVICE_ORDERS,
  CTL_SERVICE_WORKER,
  CTL_N_SERVICES
} CtlService;

typedef struct _CtlConfig CtlConfig;

/* Reads books.env, orders.env and worker.env from @dir; NULL: the
 * directory BOOKSTORE_CONFIG_DIR names, else /etc/bookstore. A missing file
 * means that service is not installed here; an unreadable one is an error
 * (BS_ERROR_CONFIG) that says who may read it. */
CtlConfig *ctl_config_load (const char *dir, GError **error);
void ctl_config_free (CtlConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlConfig, ctl_config_free)

const char *ctl_config_dir (const CtlConfig *config);
const char *ctl_service_name (CtlService service); /* "books", "orders", "worker" */

/* Whether the service's env file exists (its package is installed). */
gboolean ctl_config_has (const CtlConfig *config, CtlService service);

/* @key of the service: from its file, else the unit's default, else NULL. */
const char *ctl_config_get (const CtlConfig *config, CtlService service, const char *key);

/* http(s)://<address>:<port>@path of the service on this host. */
char *ctl_config_url (const CtlConfig *config, CtlService service, const char *path);

/* Where Redis is (worker.env, else orders.env) and whom to log in as: the
 * user bookstore-ctl with <dir>/redis/ctl.password when that file exists
 * (bookstore-setup-redis makes both), else the worker's settings in
 * worker.env. @who says which ("bookstore-ctl (...)", ...). */
gboolean ctl_config_redis (const CtlConfig *config, BsConfigRedis *redis, char **who,
                           GError **error);

G_END_DECLS
