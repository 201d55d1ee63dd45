/* worker-config.c: defaults, ranges and checks of every variable. */
#include "worker-config.h"

#include "worker-streams.h"

#include "bs-config.h"
#include "bs-error.h"
#include "bs-stream-trimmer.h"
#include "bs-stream.h"

#define NAME_MAX_CHARS 200
#define RECIPIENT_MAX_CHARS 320

/* A consumer name or recipient goes into Redis fields and log lines: one
 * printable token, not too long. */
static gboolean
check_token (const char *variable, const char *value, guint max_chars, gboolean allow_spaces,
             GError **error)
{
  if (g_utf8_strlen (value, -1) > max_chars || !g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s is invalid: expected at most %u characters of UTF-8", variable, max_chars);
      return FALSE;
    }
  for (const char *p = value; *p != '\0'; p++)
    if (g_ascii_iscntrl (*p) || (!allow_spaces && *p == ' '))
      {
        g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                     "%s=\"%s\" is invalid: no control characters%s", variable, value,
                     allow_spaces ? "" : " or spaces");
        return FALSE;
      }
  return TRUE;
}

/* How much the streams keep (docs/events.md, "Trimming"). */
static gboolean
load_stream_limits (WorkerConfig *config, GError **error)
{
  config->stream_retention_ms = 60000;
  config->results_max_entries = WORKER_RESULTS_MAX_ENTRIES;
  config->dead_max_entries = 10000;
  return bs_config_get_uint ("WORKER_STREAM_RETENTION_MS", config->stream_retention_ms, 0,
                             BS_STREAM_RETENTION_MAX_MS, &config->stream_retention_ms, error)
         /* no more than the XADD's own cap */
         && bs_config_get_uint ("WORKER_RESULTS_MAX_ENTRIES", config->results_max_entries, 1,
                                WORKER_RESULTS_MAX_ENTRIES, &config->results_max_entries, error)
         && bs_config_get_uint ("WORKER_DEAD_MAX_ENTRIES", config->dead_max_entries, 1, 100000000,
                                &config->dead_max_entries, error);
}

gboolean
worker_config_load (WorkerConfig *config, GError **error)
{
  g_autofree char *fallback_name = bs_stream_default_consumer ();

  config->concurrency = 5;
  config->block_ms = 2000;
  config->claim_idle_ms = 30000;
  config->max_deliveries = 5;
  config->http_retries = 3;
  config->http_timeout_ms = 5000;
  config->step_delay_ms = 10;
  config->done_ttl_s = 86400;
  config->stock_limit = 1000;
  config->redis_timeout_ms = 5000;
  return bs_config_get_redis (&config->redis, error)
         && bs_config_get_uint ("REDIS_COMMAND_TIMEOUT_MS", config->redis_timeout_ms, 100, 600000,
                                &config->redis_timeout_ms, error)
         && bs_config_get_uint ("WORKER_CONCURRENCY", config->concurrency, 1, 1000,
                                &config->concurrency, error)
         && bs_config_get_string ("WORKER_NAME", fallback_name, &config->name, error)
         && check_token ("WORKER_NAME", config->name, NAME_MAX_CHARS, FALSE, error)
         && bs_config_get_uint ("WORKER_BLOCK_MS", config->block_ms, 10, 60000, &config->block_ms,
                                error)
         && bs_config_get_uint ("WORKER_CLAIM_IDLE_MS", config->claim_idle_ms, 100, 86400000,
                                &config->claim_idle_ms, error)
         && bs_config_get_uint ("WORKER_MAX_DELIVERIES", config->max_deliveries, 1, 1000,
                                &config->max_deliveries, error)
         && load_stream_limits (config, error)
         && bs_config_get_string ("ORDERS_API_URL", "http://127.0.0.1:8082", &config->orders_url,
                                  error)
         && bs_config_get_string ("ORDERS_CA_FILE", "", &config->orders_ca_file, error)
         && bs_config_get_uint ("ORDERS_HTTP_RETRIES", config->http_retries, 0, 20,
                                &config->http_retries, error)
         && bs_config_get_uint ("ORDERS_HTTP_TIMEOUT_MS", config->http_timeout_ms, 100, 600000,
                                &config->http_timeout_ms, error)
         && bs_config_get_uint ("WORKER_STEP_DELAY_MS", config->step_delay_ms, 0, 600000,
                                &config->step_delay_ms, error)
         /* at least the longest time a duplicate of an event can arrive in:
          * the claim of a pending entry, the outbox relay's retry */
         && bs_config_get_uint ("WORKER_DONE_TTL_S", config->done_ttl_s, 60, 2592000,
                                &config->done_ttl_s, error)
         && bs_config_get_uint ("WORKER_STOCK_LIMIT", config->stock_limit, 0, 1000000000,
                                &config->stock_limit, error)
         && bs_config_get_string ("NOTIFY_RECIPIENT", "orders@localhost", &config->notify_recipient,
                                  error)
         && check_token ("NOTIFY_RECIPIENT", config->notify_recipient, RECIPIENT_MAX_CHARS, TRUE,
                         error);
}

void
worker_config_clear (WorkerConfig *config)
{
  bs_config_redis_clear (&config->redis);
  g_clear_pointer (&config->name, g_free);
  g_clear_pointer (&config->orders_url, g_free);
  g_clear_pointer (&config->orders_ca_file, g_free);
  g_clear_pointer (&config->notify_recipient, g_free);
}
