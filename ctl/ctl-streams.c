/* ctl-streams.c: XINFO GROUPS for lag and pending per group, XLEN, and
 * XRANGE in pages. */
#include "ctl-streams.h"

#include <string.h>

#define PAGE "500"
#define PAGE_SIZE 500

const char *const ctl_consumed_streams[]
    = { CTL_STREAM_EVENTS, CTL_STREAM_STATUS, CTL_STREAM_NOTIFICATIONS, CTL_STREAM_REQUESTS, NULL };
const char *const ctl_dead_streams[]
    = { CTL_STREAM_EVENTS CTL_DEAD_SUFFIX, CTL_STREAM_NOTIFICATIONS CTL_DEAD_SUFFIX,
        CTL_STREAM_REQUESTS CTL_DEAD_SUFFIX, NULL };

static gint64
reply_int (redisReply *reply)
{
  if (reply == NULL)
    return -1;
  if (reply->type == REDIS_REPLY_INTEGER)
    return reply->integer;
  if (reply->type == REDIS_REPLY_STRING)
    return g_ascii_strtoll (reply->str, NULL, 10);
  return -1;
}

static void
add_groups (JsonBuilder *b, redisReply *groups)
{
  json_builder_set_member_name (b, "groups");
  json_builder_begin_array (b);
  for (size_t i = 0; groups != NULL && i < groups->elements; i++)
    {
      redisReply *group = groups->element[i];
      redisReply *name = ctl_redis_field (group, "name");
      gint64 lag = reply_int (ctl_redis_field (group, "lag"));

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, name != NULL && name->str != NULL ? name->str : "?");
      json_builder_set_member_name (b, "consumers");
      json_builder_add_int_value (b, reply_int (ctl_redis_field (group, "consumers")));
      json_builder_set_member_name (b, "pending");
      json_builder_add_int_value (b, reply_int (ctl_redis_field (group, "pending")));
      /* nil when Redis cannot tell (entries deleted in between) */
      json_builder_set_member_name (b, "lag");
      if (lag >= 0)
        json_builder_add_int_value (b, lag);
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

static gboolean
add_stream (JsonBuilder *b, redisContext *redis, const char *stream, gboolean consumed,
            GError **error)
{
  g_autoptr (redisReply) length = ctl_redis (redis, error, "XLEN", stream);
  g_autoptr (redisReply) groups = NULL;

  if (length == NULL)
    return FALSE;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "stream");
  json_builder_add_string_value (b, stream);
  json_builder_set_member_name (b, "length");
  json_builder_add_int_value (b, length->integer);
  if (consumed)
    {
      g_autoptr (GError) local_error = NULL;

      /* XINFO GROUPS of a stream that does not exist is an error: no groups */
      groups = ctl_redis (redis, &local_error, "XINFO", "GROUPS", stream);
      if (groups == NULL && length->integer > 0)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      add_groups (b, groups);
    }
  json_builder_end_object (b);
  return TRUE;
}

JsonNode *
ctl_streams_status (redisContext *redis, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  for (guint i = 0; ctl_consumed_streams[i] != NULL; i++)
    if (!add_stream (b, redis, ctl_consumed_streams[i], TRUE, error))
      return NULL;
  if (!add_stream (b, redis, CTL_STREAM_RESULTS, FALSE, error))
    return NULL;
  for (guint i = 0; ctl_dead_streams[i] != NULL; i++)
    if (!add_stream (b, redis, ctl_dead_streams[i], FALSE, error))
      return NULL;
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

JsonObject *
ctl_stream_entry_object (redisReply *entry)
{
  JsonObject *object = json_object_new ();
  redisReply *fields;

  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
    return object;
  json_object_set_string_member (object, "id", entry->element[0]->str);
  fields = entry->element[1];
  for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
    if (fields->element[i]->type == REDIS_REPLY_STRING
        && fields->element[i + 1]->type == REDIS_REPLY_STRING)
      json_object_set_string_member (object, fields->element[i]->str, fields->element[i + 1]->str);
  return object;
}

gboolean
ctl_stream_scan (redisContext *redis, const char *stream, CtlEntryFunc func, gpointer user_data,
                 GError **error)
{
  g_autofree char *start = g_strdup ("-");

  for (;;)
    {
      g_autoptr (redisReply) page
          = ctl_redis (redis, error, "XRANGE", stream, start, "+", "COUNT", PAGE);
      const char *last;

      if (page == NULL)
        return FALSE;
      if (page->elements == 0)
        return TRUE;
      for (size_t i = 0; i < page->elements; i++)
        if (!func (page->element[i], user_data))
          return TRUE;
      if (page->elements < PAGE_SIZE)
        return TRUE;
      last = page->element[page->elements - 1]->element[0]->str;
      g_free (start);
      start = g_strconcat ("(", last, NULL); /* exclusive: Redis 6.2 */
    }
}
