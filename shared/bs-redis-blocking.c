/* bs-redis-blocking.c: hiredis's blocking API with timeouts, the login and
 * the Sentinel lookup, for the command-line tools. */
#include "bs-redis-blocking.h"

#include "bs-error.h"
#include "bs-redis.h"

#include <errno.h>
#include <string.h>

redisReply *
bs_redis_blocking_command (redisContext *redis, int argc, const char *const *argv, GError **error)
{
  redisReply *reply = redisCommandArgv (redis, argc, (const char **) argv, NULL);
  int saved_errno = errno;

  if (reply == NULL && redis->err == REDIS_ERR_IO
      && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
    {
      /* SO_RCVTIMEO ran out: hiredis says only "Resource temporarily
       * unavailable" */
      guint64 ms = redis->timeout != NULL ? (guint64) redis->timeout->tv_sec * 1000
                                                + (guint64) redis->timeout->tv_usec / 1000
                                          : 0;
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE,
                   "Redis %s failed: no answer within %" G_GUINT64_FORMAT " ms", argv[0], ms);
      return NULL;
    }
  if (reply == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "Redis %s failed: %s", argv[0],
                   redis->errstr[0] != '\0' ? redis->errstr : "no reply");
      return NULL;
    }
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_INTERNAL, "Redis %s refused: %s", argv[0], reply->str);
      freeReplyObject (reply);
      return NULL;
    }
  return reply;
}

static redisContext *
connect_to (const char *host, guint16 port, guint timeout_ms, GError **error)
{
  struct timeval timeout = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
  g_autoptr (redisContext) redis = redisConnectWithTimeout (host, port, timeout);

  if (redis == NULL || redis->err != 0)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "cannot connect: %s",
                   redis != NULL ? redis->errstr : "out of memory");
      return NULL;
    }
  redisSetTimeout (redis, timeout);
  return g_steal_pointer (&redis);
}

/* AUTH [user] password: the reply to a refused one (WRONGPASS) never holds
 * the password, and neither does our message. */
static gboolean
log_in (redisContext *redis, const BsConfigRedis *config, GError **error)
{
  g_autoptr (redisReply) reply = NULL;

  if (config->password == NULL)
    return TRUE;
  if (*config->username != '\0')
    reply = bs_redis_blocking_command (
        redis, 3, (const char *const[]){ "AUTH", config->username, config->password }, error);
  else
    reply = bs_redis_blocking_command (redis, 2, (const char *const[]){ "AUTH", config->password },
                                       error);
  if (reply == NULL && error != NULL && *error != NULL)
    (*error)->code = BS_ERROR_UNAVAILABLE;
  return reply != NULL;
}

/* HELLO 2 says "role": a sentinel may still name a master that is a replica
 * now. */
static gboolean
is_master (redisContext *redis, GError **error)
{
  g_autoptr (redisReply) reply
      = bs_redis_blocking_command (redis, 2, (const char *const[]){ "HELLO", "2" }, error);
  const char *role = bs_redis_reply_str (bs_redis_reply_field (reply, "role"));

  if (reply == NULL)
    return FALSE;
  if (g_strcmp0 (role, "master") != 0)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "that Redis is a %s, not the master",
                   role != NULL ? role : "server of no known role");
      return FALSE;
    }
  return TRUE;
}

/* The master the sentinel at @sentinel names, logged in and checked. */
static redisContext *
connect_master_from (const char *sentinel, const BsConfigRedis *config, guint timeout_ms,
                     char **address, GError **error)
{
  g_autofree char *host = NULL;
  guint16 port;
  g_autoptr (redisContext) redis = NULL;
  g_autoptr (redisReply) reply = NULL;
  guint64 master_port = 0;

  if (!bs_redis_parse_address (sentinel, BS_REDIS_SENTINEL_PORT, &host, &port, error))
    return NULL;
  redis = connect_to (host, port, timeout_ms, error);
  if (redis != NULL)
    reply = bs_redis_blocking_command (
        redis, 3,
        (const char *const[]){ "SENTINEL", "get-master-addr-by-name", config->master_name }, error);
  if (reply == NULL)
    {
      g_prefix_error (error, "sentinel %s: ", sentinel);
      return NULL;
    }
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
      && bs_redis_reply_str (reply->element[0]) != NULL
      && bs_redis_reply_str (reply->element[1]) != NULL)
    master_port = g_ascii_strtoull (reply->element[1]->str, NULL, 10);
  if (master_port == 0 || master_port > G_MAXUINT16)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "sentinel %s does not know master %s",
                   sentinel, config->master_name);
      return NULL;
    }
  g_free (*address);
  *address = g_strdup_printf (strchr (reply->element[0]->str, ':') != NULL ? "[%s]:%u" : "%s:%u",
                              reply->element[0]->str, (guint) master_port);
  g_clear_pointer (&redis, redisFree);
  redis = connect_to (reply->element[0]->str, (guint16) master_port, timeout_ms, error);
  if (redis == NULL || !log_in (redis, config, error) || !is_master (redis, error))
    {
      g_prefix_error (error, "master %s at %s (from sentinel %s): ", config->master_name, *address,
                      sentinel);
      return NULL;
    }
  return g_steal_pointer (&redis);
}

redisContext *
bs_redis_blocking_connect (const BsConfigRedis *config, guint timeout_ms, char **address,
                           GError **error)
{
  g_autoptr (redisContext) redis = NULL;

  *address = NULL;
  if (config->sentinels != NULL)
    {
      g_autoptr (GError) last = NULL;

      for (guint i = 0; config->sentinels[i] != NULL && redis == NULL; i++)
        {
          g_clear_error (&last);
          redis = connect_master_from (config->sentinels[i], config, timeout_ms, address, &last);
        }
      if (redis == NULL)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE,
                       "no sentinel led to the master %s (last: %s)", config->master_name,
                       last != NULL ? last->message : "no sentinel listed");
          return NULL;
        }
      return g_steal_pointer (&redis);
    }
  *address = g_strdup_printf (strchr (config->host, ':') != NULL ? "[%s]:%u" : "%s:%u",
                              config->host, config->port);
  redis = connect_to (config->host, config->port, timeout_ms, error);
  if (redis == NULL || !log_in (redis, config, error))
    return NULL;
  return g_steal_pointer (&redis);
}
