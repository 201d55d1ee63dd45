/* bs-rate-limit.c: token buckets in millionths of a token, so that refill
 * is exact integer arithmetic: a client earns @per_second millionths per
 * microsecond. */
#include "bs-rate-limit.h"

#include "bs-config.h"

#define MICRO 1000000

typedef struct
{
  GList link;     /* in BsRateLimit.recent; data points back here */
  char *client;   /* the key */
  gint64 tokens;  /* millionths of a token */
  gint64 updated; /* monotonic µs of the last refill */
} Bucket;

struct _BsRateLimit
{
  gatomicrefcount ref;
  GMutex lock;
  guint per_second;
  guint burst;
  guint max_clients;
  GHashTable *buckets;  /* client → Bucket, owned */
  GQueue recent;        /* Bucket links, the most recently seen first */
  BsAddressSet *exempt; /* or NULL; set before serving, read-only then */
};

static void
bucket_free (gpointer data)
{
  Bucket *bucket = data;

  g_free (bucket->client);
  g_free (bucket);
}

BsRateLimit *
bs_rate_limit_new (guint per_second, guint burst, guint max_clients)
{
  BsRateLimit *limit = g_new0 (BsRateLimit, 1);

  g_atomic_ref_count_init (&limit->ref);
  g_mutex_init (&limit->lock);
  limit->per_second = MAX (per_second, 1);
  limit->burst = MAX (burst, 1);
  limit->max_clients = MAX (max_clients, 1);
  /* the bucket owns its key */
  limit->buckets = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, bucket_free);
  g_queue_init (&limit->recent);
  return limit;
}

BsRateLimit *
bs_rate_limit_ref (BsRateLimit *limit)
{
  g_atomic_ref_count_inc (&limit->ref);
  return limit;
}

void
bs_rate_limit_unref (BsRateLimit *limit)
{
  if (limit == NULL || !g_atomic_ref_count_dec (&limit->ref))
    return;
  g_hash_table_destroy (limit->buckets);
  g_clear_pointer (&limit->exempt, bs_address_set_unref);
  g_mutex_clear (&limit->lock);
  g_free (limit);
}

gboolean
bs_rate_limit_new_from_environment (BsRateLimit **out, GError **error)
{
  guint per_second = 0;
  guint burst = 0;
  guint max_clients = 0;
  g_autofree char *exempt_spec = NULL;
  g_autoptr (BsAddressSet) exempt = NULL;

  *out = NULL;
  if (!bs_config_get_uint ("RATE_LIMIT_WRITES", 0, 0, 1000000, &per_second, error))
    return FALSE;
  if (!bs_config_get_uint ("RATE_LIMIT_BURST", MAX (per_second, 1) * 2, 1, 2000000, &burst, error)
      || !bs_config_get_uint ("RATE_LIMIT_CLIENTS", BS_RATE_LIMIT_DEFAULT_CLIENTS, 1, 10000000,
                              &max_clients, error)
      || !bs_config_get_string ("RATE_LIMIT_EXEMPT", "", &exempt_spec, error))
    return FALSE;
  exempt = bs_address_set_new ("RATE_LIMIT_EXEMPT", exempt_spec, error);
  if (exempt == NULL)
    return FALSE;
  if (per_second > 0)
    {
      *out = bs_rate_limit_new (per_second, burst, max_clients);
      bs_rate_limit_set_exempt (*out, exempt);
    }
  return TRUE;
}

/* Add what @bucket earned since it was last filled, up to the burst. */
static void
refill (BsRateLimit *limit, Bucket *bucket, gint64 now_us)
{
  gint64 full = (gint64) limit->burst * MICRO;
  gint64 elapsed = now_us - bucket->updated;

  if (elapsed <= 0)
    return;
  bucket->updated = now_us;
  /* past this, the bucket is full whatever it held (and no overflow) */
  if (elapsed >= full / limit->per_second + 1)
    bucket->tokens = full;
  else
    bucket->tokens = MIN (full, bucket->tokens + elapsed * (gint64) limit->per_second);
}

static Bucket *
lookup_or_add (BsRateLimit *limit, const char *client, gint64 now_us)
{
  Bucket *bucket = g_hash_table_lookup (limit->buckets, client);

  if (bucket != NULL)
    {
      g_queue_unlink (&limit->recent, &bucket->link);
      g_queue_push_head_link (&limit->recent, &bucket->link);
      refill (limit, bucket, now_us);
      return bucket;
    }
  while (g_hash_table_size (limit->buckets) >= limit->max_clients)
    {
      GList *oldest = g_queue_pop_tail_link (&limit->recent);
      Bucket *evicted = oldest->data;

      g_hash_table_remove (limit->buckets, evicted->client);
    }
  bucket = g_new0 (Bucket, 1);
  bucket->client = g_strdup (client);
  bucket->tokens = (gint64) limit->burst * MICRO;
  bucket->updated = now_us;
  bucket->link.data = bucket;
  g_hash_table_insert (limit->buckets, bucket->client, bucket);
  g_queue_push_head_link (&limit->recent, &bucket->link);
  return bucket;
}

gboolean
bs_rate_limit_take (BsRateLimit *limit, const char *client, gint64 now_us, guint *retry_after_s)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&limit->lock);
  Bucket *bucket = lookup_or_add (limit, client, now_us);
  gint64 wait_us;

  (void) locker;
  if (bucket->tokens >= MICRO)
    {
      bucket->tokens -= MICRO;
      return TRUE;
    }
  wait_us = (MICRO - bucket->tokens + limit->per_second - 1) / limit->per_second;
  if (retry_after_s != NULL)
    *retry_after_s = (guint) MAX ((wait_us + MICRO - 1) / MICRO, 1);
  return FALSE;
}

void
bs_rate_limit_set_exempt (BsRateLimit *limit, BsAddressSet *exempt)
{
  g_clear_pointer (&limit->exempt, bs_address_set_unref);
  limit->exempt = exempt != NULL ? bs_address_set_ref (exempt) : NULL;
}

gboolean
bs_rate_limit_is_exempt (BsRateLimit *limit, GInetAddress *client)
{
  return bs_address_set_contains (limit->exempt, client);
}

guint
bs_rate_limit_get_n_clients (BsRateLimit *limit)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&limit->lock);

  (void) locker;
  return g_hash_table_size (limit->buckets);
}

guint
bs_rate_limit_get_per_second (BsRateLimit *limit)
{
  return limit->per_second;
}

guint
bs_rate_limit_get_burst (BsRateLimit *limit)
{
  return limit->burst;
}

guint
bs_rate_limit_get_max_clients (BsRateLimit *limit)
{
  return limit->max_clients;
}
