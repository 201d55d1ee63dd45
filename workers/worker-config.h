/* worker-config.h: the worker's settings, read from the environment. */
#pragma once

#include "bs-config.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  BsConfigRedis redis; /* REDIS_HOST, REDIS_PORT, REDIS_USERNAME, the password */
  guint redis_timeout_ms;
  guint concurrency; /* per queue */
  char *name;        /* consumer name */
  guint block_ms;
  guint claim_idle_ms;
  guint max_deliveries;
  guint stream_retention_ms; /* acknowledged entries kept this long */
  guint results_max_entries; /* bookstore:order-results */
  guint dead_max_entries;    /* each <stream>:dead */
  char *orders_url;
  char *orders_ca_file; /* ORDERS_CA_FILE for https; empty: the system's */
  guint http_retries;
  guint http_timeout_ms;
  guint step_delay_ms;
  guint done_ttl_s; /* how long an order's done mark stays */
  guint stock_limit;
  char *notify_recipient;
} WorkerConfig;

/* BS_ERROR_CONFIG names the variable at fault. */
gboolean worker_config_load (WorkerConfig *config, GError **error);
void worker_config_clear (WorkerConfig *config);

G_END_DECLS
