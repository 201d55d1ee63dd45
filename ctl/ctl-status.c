/* ctl-status.c: `status` — is everything up? The units (systemd), each
 * installed service's /health (its version from the Server header), the
 * databases (PQping: no login needed), Redis and its streams, the outbox.
 * Exit status 1 when anything installed here is not healthy. */
#include "ctl-clients.h"
#include "ctl-outbox.h"
#include "ctl-streams.h"
#include "ctl-units.h"

#include <stdio.h>
#include <string.h>

static void
set_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_service (Ctl *ctl, JsonBuilder *b, CtlService service, gboolean *healthy)
{
  g_autofree char *url = ctl_config_url (ctl->config, service, "/health");
  g_autofree char *body = NULL;
  g_autofree char *server = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  guint status = ctl_http_get (ctl, url, NULL, &body, &server, &error);
  /* "bookstore/0.1.0 libsoup/3.2.3" */
  g_autofree char *version = server != NULL && g_str_has_prefix (server, "bookstore/")
                                 ? g_strndup (server + strlen ("bookstore/"),
                                              strcspn (server + strlen ("bookstore/"), " "))
                                 : NULL;

  if (status != 200)
    *healthy = FALSE;
  json_builder_begin_object (b);
  set_string (b, "name", ctl_service_name (service));
  set_string (b, "url", url);
  json_builder_set_member_name (b, "http_status");
  json_builder_add_int_value (b, status);
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, status == 200);
  set_string (b, "version", version);
  /* what the service said about its own dependencies */
  json_builder_set_member_name (b, "checks");
  if (body != NULL && json_parser_load_from_data (parser, body, -1, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))
      && json_object_has_member (json_node_get_object (json_parser_get_root (parser)), "services"))
    json_builder_add_value (b,
                            json_node_copy (json_object_get_member (
                                json_node_get_object (json_parser_get_root (parser)), "services")));
  else
    json_builder_add_null_value (b);
  set_string (b, "error", error != NULL ? error->message : NULL);
  json_builder_end_object (b);
}

static void
add_database (Ctl *ctl, JsonBuilder *b, CtlService service, gboolean *healthy)
{
  PGPing ping = ctl_pg_ping (ctl, service);
  const char *reasons[] = { [PQPING_OK] = NULL,
                            [PQPING_REJECT] = "the server refuses connections (starting up?)",
                            [PQPING_NO_RESPONSE] = "no answer",
                            [PQPING_NO_ATTEMPT] = "the DSN is invalid" };

  if (ping != PQPING_OK)
    *healthy = FALSE;
  json_builder_begin_object (b);
  set_string (b, "name", ctl_service_name (service));
  json_builder_set_member_name (b, "reachable");
  json_builder_add_boolean_value (b, ping == PQPING_OK);
  set_string (b, "error", reasons[ping]);
  json_builder_end_object (b);
}

static void
add_redis (Ctl *ctl, JsonBuilder *b, gboolean *healthy)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *who = NULL, *address = NULL;
  g_autoptr (redisContext) redis = ctl_redis_connect (ctl, &who, &address, &error);
  JsonNode *streams = redis != NULL ? ctl_streams_status (redis, &error) : NULL;

  if (redis == NULL)
    *healthy = FALSE;
  json_builder_set_member_name (b, "redis");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "reachable");
  json_builder_add_boolean_value (b, redis != NULL);
  set_string (b, "user", who);
  set_string (b, "address", address);
  json_builder_set_member_name (b, "streams");
  if (streams != NULL)
    json_builder_add_value (b, streams);
  else
    json_builder_add_null_value (b);
  set_string (b, "error", error != NULL ? error->message : NULL);
  json_builder_end_object (b);
}

static void
add_outbox (Ctl *ctl, JsonBuilder *b)
{
  g_autoptr (GError) error = NULL;
  gint64 pending = 0, oldest = 0;
  gboolean ok = ctl_outbox_read (ctl, &pending, &oldest, &error);

  json_builder_set_member_name (b, "outbox");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "pending");
  ok ? json_builder_add_int_value (b, pending) : json_builder_add_null_value (b);
  json_builder_set_member_name (b, "oldest_pending_seconds");
  ok ? json_builder_add_int_value (b, oldest) : json_builder_add_null_value (b);
  set_string (b, "error", error != NULL ? error->message : NULL);
  json_builder_end_object (b);
}

static JsonNode *
collect (Ctl *ctl, gboolean *healthy)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gboolean redis_used = ctl_config_has (ctl->config, CTL_SERVICE_ORDERS)
                        || ctl_config_has (ctl->config, CTL_SERVICE_WORKER);

  json_builder_begin_object (b);
  set_string (b, "config_dir", ctl_config_dir (ctl->config));
  json_builder_set_member_name (b, "units");
  json_builder_add_value (b, ctl_units_status (ctl, healthy));
  json_builder_set_member_name (b, "services");
  json_builder_begin_array (b);
  for (CtlService s = 0; s < CTL_N_SERVICES; s++)
    if (ctl_config_has (ctl->config, s))
      add_service (ctl, b, s, healthy);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "databases");
  json_builder_begin_array (b);
  for (CtlService s = CTL_SERVICE_BOOKS; s <= CTL_SERVICE_ORDERS; s++)
    if (ctl_config_has (ctl->config, s))
      add_database (ctl, b, s, healthy);
  json_builder_end_array (b);
  if (redis_used)
    add_redis (ctl, b, healthy);
  if (ctl_config_has (ctl->config, CTL_SERVICE_ORDERS))
    add_outbox (ctl, b);
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, *healthy);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static const char *
mark (gboolean ok)
{
  return ok ? "ok  " : "FAIL";
}

static void
print_units (JsonObject *units)
{
  JsonArray *list;

  if (!json_object_get_boolean_member_with_default (units, "available", FALSE))
    {
      printf ("units: %s\n", ctl_json_string (units, "reason", "unavailable"));
      return;
    }
  list = json_object_get_array_member (units, "units");
  printf ("units:\n");
  if (json_array_get_length (list) == 0)
    printf ("  (no bookstore units loaded)\n");
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonObject *u = json_array_get_object_element (list, i);
      gint64 up = json_object_get_int_member_with_default (u, "uptime_seconds", -1);
      g_autofree char *uptime = up >= 0 ? ctl_format_duration (up) : g_strdup ("-");

      printf ("  %s %-32s %s/%s  up %s  restarts %" G_GINT64_FORMAT "\n",
              mark (json_object_get_boolean_member (u, "healthy")),
              ctl_json_string (u, "name", "?"), ctl_json_string (u, "active_state", "?"),
              ctl_json_string (u, "sub_state", "?"), uptime,
              json_object_get_int_member_with_default (u, "restarts", 0));
    }
}

static void
print_streams (JsonArray *streams)
{
  printf ("  %-32s %8s  %-20s %8s %8s\n", "stream", "length", "group", "pending", "lag");
  for (guint i = 0; streams != NULL && i < json_array_get_length (streams); i++)
    {
      JsonObject *s = json_array_get_object_element (streams, i);
      JsonArray *groups = ctl_json_array (s, "groups");
      guint n = groups != NULL ? json_array_get_length (groups) : 0;

      printf ("  %-32s %8" G_GINT64_FORMAT, ctl_json_string (s, "stream", "?"),
              json_object_get_int_member_with_default (s, "length", 0));
      if (n == 0)
        printf ("\n");
      for (guint g = 0; g < n; g++)
        {
          JsonObject *group = json_array_get_object_element (groups, g);
          JsonNode *lag = json_object_get_member (group, "lag");
          g_autofree char *lag_text
              = JSON_NODE_HOLDS_NULL (lag)
                    ? g_strdup ("?")
                    : g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (lag));

          printf ("%s  %-20s %8" G_GINT64_FORMAT " %8s\n",
                  g == 0 ? "" : "                                           ",
                  ctl_json_string (group, "name", "?"),
                  json_object_get_int_member_with_default (group, "pending", 0), lag_text);
        }
    }
}

static void
print_status (JsonObject *root)
{
  JsonArray *services = json_object_get_array_member (root, "services");
  JsonArray *databases = json_object_get_array_member (root, "databases");
  JsonObject *redis = ctl_json_object (root, "redis");
  JsonObject *outbox = ctl_json_object (root, "outbox");

  printf ("configuration: %s\n", ctl_json_string (root, "config_dir", "?"));
  print_units (json_object_get_object_member (root, "units"));
  printf ("services:\n");
  for (guint i = 0; i < json_array_get_length (services); i++)
    {
      JsonObject *s = json_array_get_object_element (services, i);

      printf ("  %s %-7s %-32s %s\n", mark (json_object_get_boolean_member (s, "healthy")),
              ctl_json_string (s, "name", "?"), ctl_json_string (s, "url", "?"),
              ctl_json_string (s, "error", ctl_json_string (s, "version", "")));
    }
  printf ("databases:\n");
  for (guint i = 0; i < json_array_get_length (databases); i++)
    {
      JsonObject *d = json_array_get_object_element (databases, i);

      printf ("  %s %-7s %s\n", mark (json_object_get_boolean_member (d, "reachable")),
              ctl_json_string (d, "name", "?"), ctl_json_string (d, "error", "reachable"));
    }
  if (redis != NULL)
    {
      const char *address = ctl_json_string (redis, "address", NULL);

      printf ("redis:\n  %s %s%s%s\n", mark (json_object_get_boolean_member (redis, "reachable")),
              ctl_json_string (redis, "error", ctl_json_string (redis, "user", "")),
              address != NULL ? " at " : "", address != NULL ? address : "");
      print_streams (ctl_json_array (redis, "streams"));
    }
  if (outbox != NULL)
    {
      JsonNode *pending = json_object_get_member (outbox, "pending");

      if (JSON_NODE_HOLDS_NULL (pending))
        printf ("outbox: %s\n", ctl_json_string (outbox, "error", "unknown"));
      else
        {
          g_autofree char *age = ctl_format_duration (
              json_object_get_int_member_with_default (outbox, "oldest_pending_seconds", 0));

          printf ("outbox: %" G_GINT64_FORMAT " pending, oldest %s\n", json_node_get_int (pending),
                  age);
        }
    }
  printf ("%s\n", json_object_get_boolean_member (root, "healthy") ? "healthy" : "UNHEALTHY");
}

int
ctl_status (Ctl *ctl, int argc, char **argv)
{
  gboolean healthy = TRUE;
  JsonNode *root;

  if (argc > 1)
    return ctl_usage_error ("status takes no arguments");
  root = collect (ctl, &healthy);
  if (ctl->json)
    ctl_print_json (root);
  else
    {
      print_status (json_node_get_object (root));
      json_node_unref (root);
    }
  return healthy ? CTL_EXIT_OK : CTL_EXIT_UNHEALTHY;
}
