/* ctl-dead-letters.c: `dead-letters list|show|retry|drop` — the entries the
 * worker gave up on (<stream>:dead: the original fields plus
 * dead_original_id, dead_queue, dead_deliveries, dead_reason). */
#include "ctl-clients.h"
#include "ctl-streams.h"

#include "bs-error.h"

#include <stdio.h>
#include <string.h>

#define LIST_LIMIT 1000

/* Moves one dead entry back to its stream, without the dead_* fields, and
 * deletes it, in one script, which Redis runs whole: of two retries of the
 * same entry, the second finds nothing (nil), so a job goes back once. */
static const char retry_script[]
    = "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])\n"
      "if #e == 0 then return false end\n"
      "local fields = {}\n"
      "local f = e[1][2]\n"
      "for i = 1, #f, 2 do\n"
      "  if string.sub(f[i], 1, 5) ~= 'dead_' then\n"
      "    fields[#fields + 1] = f[i]\n"
      "    fields[#fields + 1] = f[i + 1]\n"
      "  end\n"
      "end\n"
      "if #fields == 0 then return redis.error_reply('the entry has no fields to put back') end\n"
      "local id = redis.call('XADD', KEYS[2], '*', unpack(fields))\n"
      "redis.call('XDEL', KEYS[1], ARGV[1])\n"
      "return id\n";

/* "bookstore:order-requests:dead", "order-requests" or "bookstore:order-requests". */
static const char *
dead_stream_named (const char *name)
{
  for (guint i = 0; ctl_dead_streams[i] != NULL; i++)
    {
      const char *dead = ctl_dead_streams[i];
      gsize source_len = strlen (dead) - strlen (CTL_DEAD_SUFFIX);

      if (strcmp (name, dead) == 0
          || (strlen (name) == source_len && strncmp (name, dead, source_len) == 0)
          || (g_str_has_prefix (dead, "bookstore:")
              && strlen (name) == source_len - strlen ("bookstore:")
              && strncmp (name, dead + strlen ("bookstore:"), strlen (name)) == 0))
        return dead;
    }
  return NULL;
}

static gboolean
valid_id (const char *id)
{
  const char *dash = strchr (id, '-');

  if (!g_ascii_isdigit (*id) || dash == NULL || !g_ascii_isdigit (dash[1]))
    return FALSE;
  for (const char *c = id; *c != '\0'; c++)
    if (!g_ascii_isdigit (*c) && c != dash)
      return FALSE;
  return strlen (id) <= 41;
}

typedef struct
{
  const char *stream;
  JsonArray *entries;
  guint count;
} ListScan;

static gboolean
list_entry (redisReply *entry, gpointer user_data)
{
  ListScan *scan = user_data;
  JsonObject *object = ctl_stream_entry_object (entry);

  json_object_set_string_member (object, "stream", scan->stream);
  json_array_add_object_element (scan->entries, object);
  return ++scan->count < LIST_LIMIT;
}

/* what the job was: an order's event, a notification, a creation request */
static char *
summary (JsonObject *e)
{
  if (ctl_json_string (e, "order_id", NULL) != NULL)
    return g_strdup_printf ("order %s", ctl_json_string (e, "order_id", ""));
  return g_strdup_printf ("book %s x%s key %s", ctl_json_string (e, "book_id", "?"),
                          ctl_json_string (e, "quantity", "?"),
                          ctl_json_string (e, "idempotency_key", "-"));
}

static int
list (Ctl *ctl, redisContext *redis, const char *only)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonArray) entries = json_array_new ();

  for (guint i = 0; ctl_dead_streams[i] != NULL; i++)
    {
      ListScan scan = { ctl_dead_streams[i], entries, 0 };

      if (only != NULL && strcmp (only, ctl_dead_streams[i]) != 0)
        continue;
      if (!ctl_stream_scan (redis, ctl_dead_streams[i], list_entry, &scan, &error))
        return ctl_fail (ctl, CTL_EXIT_UNAVAILABLE, "dead-letters list: %s", error->message);
    }
  if (ctl->json)
    {
      JsonNode *root = json_node_new (JSON_NODE_OBJECT);
      JsonObject *object = json_object_new ();

      json_object_set_array_member (object, "entries", json_array_ref (entries));
      json_node_take_object (root, object);
      ctl_print_json (root);
      return CTL_EXIT_OK;
    }
  if (json_array_get_length (entries) == 0)
    printf ("no dead letters\n");
  else
    printf ("%-20s %-34s %-17s %5s  %-28s %s\n", "ID", "STREAM", "QUEUE", "DELIV", "JOB", "REASON");
  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *e = json_array_get_object_element (entries, i);
      g_autofree char *what = summary (e);

      printf ("%-20s %-34s %-17s %5s  %-28s %s\n", ctl_json_string (e, "id", "?"),
              ctl_json_string (e, "stream", "?"), ctl_json_string (e, "dead_queue", "?"),
              ctl_json_string (e, "dead_deliveries", "?"), what,
              ctl_json_string (e, "dead_reason", ""));
    }
  return CTL_EXIT_OK;
}

/* The dead stream that holds @id (only @only when given); NULL and exit
 * status in @status when none or several do. */
static const char *
find_entry (Ctl *ctl, redisContext *redis, const char *id, const char *only, redisReply **found,
            int *status)
{
  const char *stream = NULL;

  for (guint i = 0; ctl_dead_streams[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (redisReply) reply = NULL;

      if (only != NULL && strcmp (only, ctl_dead_streams[i]) != 0)
        continue;
      reply = ctl_redis (redis, &error, "XRANGE", ctl_dead_streams[i], id, id);
      if (reply == NULL)
        {
          *status = ctl_fail (ctl, CTL_EXIT_UNAVAILABLE, "%s", error->message);
          return NULL;
        }
      if (reply->elements == 0)
        continue;
      if (stream != NULL)
        {
          *status = ctl_fail (ctl, CTL_EXIT_USAGE, "%s is in %s and in %s: say which with --stream",
                              id, stream, ctl_dead_streams[i]);
          return NULL;
        }
      stream = ctl_dead_streams[i];
      g_clear_pointer (found, freeReplyObject);
      *found = g_steal_pointer (&reply);
    }
  if (stream == NULL)
    *status = ctl_fail (ctl, CTL_EXIT_UNHEALTHY, "no dead letter %s%s%s", id,
                        only != NULL ? " in " : "", only != NULL ? only : "");
  return stream;
}

static int
show (Ctl *ctl, redisContext *redis, const char *id, const char *only)
{
  g_autoptr (redisReply) found = NULL;
  int status = CTL_EXIT_OK;
  const char *stream = find_entry (ctl, redis, id, only, &found, &status);
  JsonObject *e;

  if (stream == NULL)
    return status;
  e = ctl_stream_entry_object (found->element[0]);
  json_object_set_string_member (e, "stream", stream);
  if (ctl->json)
    {
      JsonNode *root = json_node_new (JSON_NODE_OBJECT);

      json_node_take_object (root, e);
      ctl_print_json (root);
      return CTL_EXIT_OK;
    }
  {
    g_autoptr (GList) members = json_object_get_members (e);

    for (GList *m = members; m != NULL; m = m->next)
      printf ("%-18s %s\n", (const char *) m->data, ctl_json_string (e, m->data, ""));
  }
  json_object_unref (e);
  return CTL_EXIT_OK;
}

static int
retry (Ctl *ctl, redisContext *redis, const char *id, const char *only)
{
  g_autoptr (redisReply) found = NULL;
  g_autoptr (redisReply) reply = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *source = NULL;
  int status = CTL_EXIT_OK;
  const char *stream = find_entry (ctl, redis, id, only, &found, &status);

  if (stream == NULL)
    return status;
  source = g_strndup (stream, strlen (stream) - strlen (CTL_DEAD_SUFFIX));
  reply = ctl_redis (redis, &error, "EVAL", retry_script, "2", stream, source, id);
  if (reply == NULL)
    return ctl_fail (ctl, CTL_EXIT_UNAVAILABLE, "dead-letters retry: %s", error->message);
  if (reply->type != REDIS_REPLY_STRING)
    return ctl_fail (ctl, CTL_EXIT_UNHEALTHY,
                     "dead letter %s is gone (retried or dropped meanwhile): not retried", id);
  if (ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "retried");
      json_builder_add_string_value (b, id);
      json_builder_set_member_name (b, "from");
      json_builder_add_string_value (b, stream);
      json_builder_set_member_name (b, "stream");
      json_builder_add_string_value (b, source);
      json_builder_set_member_name (b, "new_id");
      json_builder_add_string_value (b, reply->str);
      json_builder_end_object (b);
      ctl_print_json (json_builder_get_root (b));
    }
  else
    printf ("%s put back on %s as %s\n", id, source, reply->str);
  return CTL_EXIT_OK;
}

static int
drop (Ctl *ctl, redisContext *redis, const char *id, const char *only)
{
  g_autoptr (redisReply) found = NULL;
  g_autoptr (redisReply) reply = NULL;
  g_autoptr (GError) error = NULL;
  int status = CTL_EXIT_OK;
  const char *stream = find_entry (ctl, redis, id, only, &found, &status);

  if (stream == NULL)
    return status;
  reply = ctl_redis (redis, &error, "XDEL", stream, id);
  if (reply == NULL)
    return ctl_fail (ctl, CTL_EXIT_UNAVAILABLE, "dead-letters drop: %s", error->message);
  if (reply->integer != 1)
    return ctl_fail (ctl, CTL_EXIT_UNHEALTHY, "dead letter %s is gone already", id);
  if (ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dropped");
      json_builder_add_string_value (b, id);
      json_builder_set_member_name (b, "from");
      json_builder_add_string_value (b, stream);
      json_builder_end_object (b);
      ctl_print_json (json_builder_get_root (b));
    }
  else
    printf ("%s deleted from %s\n", id, stream);
  return CTL_EXIT_OK;
}

int
ctl_dead_letters (Ctl *ctl, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *who = NULL;
  g_autoptr (redisContext) redis = NULL;
  const char *only = NULL;
  const char *action = argc > 1 ? argv[1] : "list";
  const char *id = NULL;
  gboolean is_list = strcmp (action, "list") == 0;

  if (!is_list && strcmp (action, "show") != 0 && strcmp (action, "retry") != 0
      && strcmp (action, "drop") != 0)
    return ctl_usage_error ("dead-letters: unknown action '%s' (list, show, retry, drop)", action);
  for (int i = 2; i < argc; i++)
    {
      const char *name = NULL;

      if (strcmp (argv[i], "--stream") == 0 && i + 1 < argc)
        name = argv[++i];
      else if (g_str_has_prefix (argv[i], "--stream="))
        name = argv[i] + strlen ("--stream=");
      else if (is_list && only == NULL)
        name = argv[i];
      else if (!is_list && id == NULL)
        id = argv[i];
      else
        return ctl_usage_error ("dead-letters %s: unexpected argument '%s'", action, argv[i]);
      if (name != NULL && (only = dead_stream_named (name)) == NULL)
        return ctl_usage_error ("no dead-letter stream '%s' (events, notifications, "
                                "order-requests)",
                                name);
    }
  if (!is_list && (id == NULL || !valid_id (id)))
    return ctl_usage_error ("usage: dead-letters %s ID (an entry id such as 1700000000000-0)",
                            action);
  redis = ctl_redis_connect (ctl, &who, NULL, &error);
  if (redis == NULL)
    return ctl_fail (ctl,
                     g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG) ? CTL_EXIT_CONFIG
                                                                        : CTL_EXIT_UNAVAILABLE,
                     "%s", error->message);
  if (is_list)
    return list (ctl, redis, only);
  if (strcmp (action, "show") == 0)
    return show (ctl, redis, id, only);
  if (strcmp (action, "retry") == 0)
    return retry (ctl, redis, id, only);
  return drop (ctl, redis, id, only);
}
