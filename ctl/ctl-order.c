/* ctl-order.c: `order ID` — the order as Orders answers it (with the
 * administrator's token, <config dir>/tokens/admin.token, when tokens are
 * on), its entries in the streams, oldest first, and the journal records of
 * its trace (the traceparent of its order.created event). */
#include "ctl-clients.h"
#include "ctl-journal.h"
#include "ctl-streams.h"

#include "bs-trace.h"

#include <stdio.h>
#include <string.h>

#define JOURNAL_LIMIT 500

/* where an order shows up, and the field that names it */
static const char *const order_streams[] = { CTL_STREAM_EVENTS,
                                             CTL_STREAM_STATUS,
                                             CTL_STREAM_NOTIFICATIONS,
                                             CTL_STREAM_RESULTS,
                                             CTL_STREAM_EVENTS CTL_DEAD_SUFFIX,
                                             CTL_STREAM_NOTIFICATIONS CTL_DEAD_SUFFIX,
                                             NULL };

typedef struct
{
  const char *order_id;
  const char *stream;
  GPtrArray *entries; /* JsonObject */
} Scan;

static gboolean
collect_entry (redisReply *entry, gpointer user_data)
{
  Scan *scan = user_data;
  g_autoptr (JsonObject) object = ctl_stream_entry_object (entry);

  if (g_strcmp0 (ctl_json_string (object, "order_id", NULL), scan->order_id) == 0)
    {
      json_object_set_string_member (object, "stream", scan->stream);
      g_ptr_array_add (scan->entries, g_steal_pointer (&object));
    }
  return TRUE;
}

/* by entry id: milliseconds, then sequence */
static gint
compare_entries (gconstpointer a, gconstpointer b)
{
  const char *x = ctl_json_string (*(JsonObject **) a, "id", "0-0");
  const char *y = ctl_json_string (*(JsonObject **) b, "id", "0-0");
  guint64 xm = g_ascii_strtoull (x, NULL, 10), ym = g_ascii_strtoull (y, NULL, 10);
  guint64 xs = g_ascii_strtoull (strchr (x, '-') != NULL ? strchr (x, '-') + 1 : "0", NULL, 10);
  guint64 ys = g_ascii_strtoull (strchr (y, '-') != NULL ? strchr (y, '-') + 1 : "0", NULL, 10);

  if (xm != ym)
    return xm < ym ? -1 : 1;
  return xs < ys ? -1 : xs > ys ? 1 : 0;
}

static char *
read_token (Ctl *ctl)
{
  g_autofree char *path
      = g_build_filename (ctl_config_dir (ctl->config), "tokens", "admin.token", NULL);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

/* Orders writes prices as numbers with exactly two decimals; json-glib
 * reads them as doubles and would write them back with 17 digits: keep
 * them as the decimal strings they were ("12.99"). */
static JsonNode *
exact_money (JsonNode *node)
{
  JsonObject *order = json_node_get_object (node);
  const char *members[] = { "unit_price", "total_price" };

  for (gsize i = 0; i < G_N_ELEMENTS (members); i++)
    {
      JsonNode *member = json_object_get_member (order, members[i]);
      char text[G_ASCII_DTOSTR_BUF_SIZE];

      if (member != NULL && json_node_get_value_type (member) == G_TYPE_DOUBLE)
        {
          g_ascii_formatd (text, sizeof text, "%.2f", json_node_get_double (member));
          json_object_set_string_member (order, members[i], text);
        }
    }
  return node;
}

/* The order from Orders' API: the object, or NULL with @error (404: not found). */
static JsonNode *
fetch_order (Ctl *ctl, const char *id, guint *status, GError **error)
{
  g_autofree char *path = g_strconcat ("/v1/orders/", id, NULL);
  g_autofree char *url = ctl_config_url (ctl->config, CTL_SERVICE_ORDERS, path);
  g_autofree char *token = read_token (ctl);
  g_autofree char *body = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();

  *status = ctl_http_get (ctl, url, token, &body, NULL, error);
  if (*status == 0)
    return NULL;
  if (*status != 200 || !json_parser_load_from_data (parser, body, -1, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Orders answered %u: %.200s", *status,
                   body != NULL ? body : "");
      return NULL;
    }
  return exact_money (json_node_copy (json_parser_get_root (parser)));
}

/* The trace id of the order.created event's traceparent. */
static char *
trace_id_of (GPtrArray *entries)
{
  for (guint i = 0; i < entries->len; i++)
    {
      const char *tp = ctl_json_string (entries->pdata[i], "traceparent", NULL);
      char trace_id[33], parent[17];
      guint8 flags;

      if (tp != NULL
          && g_strcmp0 (ctl_json_string (entries->pdata[i], "stream", NULL), CTL_STREAM_EVENTS) == 0
          && bs_traceparent_parse (tp, trace_id, parent, &flags))
        return g_strdup (trace_id);
    }
  return NULL;
}

static void
print_order (JsonObject *root)
{
  JsonObject *order = ctl_json_object (root, "order");
  JsonArray *timeline = json_object_get_array_member (root, "timeline");
  JsonObject *journal = json_object_get_object_member (root, "journal");
  JsonArray *records = json_object_get_array_member (journal, "entries");

  if (order != NULL)
    printf ("order %" G_GINT64_FORMAT ": %s, book %" G_GINT64_FORMAT " \"%s\" x%" G_GINT64_FORMAT
            ", total %s, created %s\n",
            json_object_get_int_member_with_default (order, "id", 0),
            ctl_json_string (order, "status", "?"),
            json_object_get_int_member_with_default (order, "book_id", 0),
            ctl_json_string (order, "book_title", "?"),
            json_object_get_int_member_with_default (order, "quantity", 0),
            ctl_json_string (order, "total_price", "?"),
            ctl_json_string (order, "created_at", "?"));
  else
    printf ("order: %s\n", ctl_json_string (root, "order_error", "not found"));
  printf ("trace: %s\n", ctl_json_string (root, "trace_id", "(none)"));
  printf ("timeline:\n");
  for (guint i = 0; i < json_array_get_length (timeline); i++)
    {
      JsonObject *e = json_array_get_object_element (timeline, i);
      const char *what = ctl_json_string (e, "status", NULL);

      if (what == NULL)
        what = ctl_json_string (e, "type", ctl_json_string (e, "outcome", ""));
      printf ("  %-20s %-34s %s%s%s\n", ctl_json_string (e, "id", "?"),
              ctl_json_string (e, "stream", "?"), what,
              ctl_json_string (e, "reason", ctl_json_string (e, "dead_reason", NULL)) != NULL ? ": "
                                                                                              : "",
              ctl_json_string (e, "reason", ctl_json_string (e, "dead_reason", "")));
    }
  if (!json_object_get_boolean_member (journal, "available"))
    printf ("journal: unavailable: %s\n", ctl_json_string (journal, "reason", "?"));
  else
    {
      printf ("journal (TRACE_ID):\n");
      for (guint i = 0; i < json_array_get_length (records); i++)
        {
          JsonObject *r = json_array_get_object_element (records, i);
          g_autofree char *when
              = ctl_format_time_us (json_object_get_int_member_with_default (r, "time_us", 0));

          printf ("  %s %s: %s\n", when,
                  ctl_json_string (r, "unit", ctl_json_string (r, "identifier", "?")),
                  ctl_json_string (r, "message", ""));
        }
    }
}

int
ctl_order (Ctl *ctl, int argc, char **argv)
{
  g_autoptr (GError) order_error = NULL;
  g_autoptr (GError) redis_error = NULL;
  g_autoptr (GPtrArray) entries
      = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *who = NULL;
  g_autofree char *trace_id = NULL;
  g_autoptr (redisContext) redis = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonNode *order;
  guint status = 0;
  gint64 id;
  char id_text[24];

  if (argc != 2)
    return ctl_usage_error ("usage: order ID");
  id = g_ascii_strtoll (argv[1], NULL, 10);
  if (id <= 0 || !g_ascii_string_to_signed (argv[1], 10, 1, G_MAXINT64, NULL, NULL))
    return ctl_usage_error ("order: '%s' is not an order id (a positive integer)", argv[1]);
  g_snprintf (id_text, sizeof id_text, "%" G_GINT64_FORMAT, id);
  order = fetch_order (ctl, id_text, &status, &order_error);
  redis = ctl_redis_connect (ctl, &who, NULL, &redis_error);
  for (guint i = 0; redis != NULL && order_streams[i] != NULL; i++)
    {
      Scan scan = { id_text, order_streams[i], entries };

      if (!ctl_stream_scan (redis, order_streams[i], collect_entry, &scan, &redis_error))
        break;
    }
  g_ptr_array_sort (entries, compare_entries);
  trace_id = trace_id_of (entries);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "order");
  order != NULL ? json_builder_add_value (b, order) : json_builder_add_null_value (b);
  json_builder_set_member_name (b, "order_error");
  order_error != NULL ? json_builder_add_string_value (b, order_error->message)
                      : json_builder_add_null_value (b);
  json_builder_set_member_name (b, "trace_id");
  trace_id != NULL ? json_builder_add_string_value (b, trace_id) : json_builder_add_null_value (b);
  json_builder_set_member_name (b, "timeline");
  json_builder_begin_array (b);
  for (guint i = 0; i < entries->len; i++)
    {
      JsonNode *node = json_node_new (JSON_NODE_OBJECT);

      json_node_set_object (node, entries->pdata[i]);
      json_builder_add_value (b, node);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "redis_error");
  redis_error != NULL ? json_builder_add_string_value (b, redis_error->message)
                      : json_builder_add_null_value (b);
  json_builder_set_member_name (b, "journal");
  json_builder_add_value (b, ctl_journal_trace (trace_id, JOURNAL_LIMIT));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  if (ctl->json)
    ctl_print_json (json_node_ref (root));
  else
    print_order (json_node_get_object (root));
  if (order == NULL && entries->len == 0)
    return status == 404   ? CTL_EXIT_UNHEALTHY
           : redis == NULL ? CTL_EXIT_UNAVAILABLE
                           : CTL_EXIT_UNHEALTHY;
  return CTL_EXIT_OK;
}
