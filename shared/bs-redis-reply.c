/* bs-redis-reply.c: reading hiredis replies (strings, integers, flat maps,
 * stream entries). */
#include "bs-redis.h"

#include <string.h>

const char *
bs_redis_reply_str (const redisReply *reply)
{
  if (reply == NULL)
    return NULL;
  switch (reply->type)
    {
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
        return reply->str;
      default:
        return NULL;
    }
}

const redisReply *
bs_redis_reply_field (const redisReply *map, const char *key)
{
  if (map == NULL || map->type != REDIS_REPLY_ARRAY || map->elements % 2 != 0)
    return NULL;
  for (size_t i = 0; i < map->elements; i += 2)
    if (g_strcmp0 (bs_redis_reply_str (map->element[i]), key) == 0)
      return map->element[i + 1];
  return NULL;
}

gboolean
bs_redis_reply_integer (const redisReply *reply, long long *out)
{
  if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
    return FALSE;
  *out = reply->integer;
  return TRUE;
}

/* A copy of a string reply; a NUL inside it becomes U+FFFD, so that the
 * C string keeps every byte after it and fails the checks a NUL would. */
static char *
entry_string (const redisReply *reply)
{
  GString *out;

  if (memchr (reply->str, '\0', reply->len) == NULL)
    return g_strndup (reply->str, reply->len);
  out = g_string_sized_new (reply->len + 8);
  for (size_t i = 0; i < reply->len; i++)
    {
      if (reply->str[i] == '\0')
        g_string_append (out, "\xEF\xBF\xBD");
      else
        g_string_append_c (out, reply->str[i]);
    }
  return g_string_free (out, FALSE);
}

GHashTable *
bs_redis_entry_fields (const redisReply *entry, char **id)
{
  const redisReply *fields;
  g_autoptr (GHashTable) table = NULL;

  if (entry == NULL || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
      || entry->element[0]->type != REDIS_REPLY_STRING)
    return NULL;
  fields = entry->element[1];
  if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0)
    return NULL;
  table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (size_t i = 0; i < fields->elements; i += 2)
    {
      const redisReply *key = fields->element[i];
      const redisReply *value = fields->element[i + 1];

      if (bs_redis_reply_str (key) == NULL || bs_redis_reply_str (value) == NULL)
        return NULL;
      g_hash_table_replace (table, entry_string (key), entry_string (value));
    }
  if (id != NULL)
    *id = g_strdup (entry->element[0]->str);
  return g_steal_pointer (&table);
}
