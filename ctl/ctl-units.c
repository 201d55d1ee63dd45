/* ctl-units.c: ListUnitsByPatterns, then each unit's properties, on the
 * system bus with a method-call timeout. */
#include "ctl-units.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#define SYSTEMD_DEST "org.freedesktop.systemd1"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sd_bus_message, sd_bus_message_unref)

static char *
get_string (sd_bus *bus, const char *path, const char *iface, const char *name)
{
  char *value = NULL;

  if (sd_bus_get_property_string (bus, SYSTEMD_DEST, path, iface, name, NULL, &value) < 0)
    return g_strdup ("?");
  return value; /* malloc'd: g_free and free are the same allocator here */
}

static guint64
get_u (sd_bus *bus, const char *path, const char *iface, const char *name, char type)
{
  guint64 t = 0;
  guint32 u = 0;

  if (type == 't')
    return sd_bus_get_property_trivial (bus, SYSTEMD_DEST, path, iface, name, NULL, 't', &t) < 0
               ? 0
               : t;
  return sd_bus_get_property_trivial (bus, SYSTEMD_DEST, path, iface, name, NULL, 'u', &u) < 0 ? 0
                                                                                               : u;
}

static void
add_unit (JsonBuilder *b, sd_bus *bus, const char *name, const char *path, gboolean *healthy)
{
  const char *unit = "org.freedesktop.systemd1.Unit";
  const char *service = "org.freedesktop.systemd1.Service";
  g_autofree char *load = get_string (bus, path, unit, "LoadState");
  g_autofree char *active = get_string (bus, path, unit, "ActiveState");
  g_autofree char *sub = get_string (bus, path, unit, "SubState");
  guint64 since = get_u (bus, path, unit, "ActiveEnterTimestamp", 't');
  gboolean ok = g_strcmp0 (active, "active") == 0 || g_strcmp0 (active, "reloading") == 0;

  if (!ok)
    *healthy = FALSE;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "load_state");
  json_builder_add_string_value (b, load);
  json_builder_set_member_name (b, "active_state");
  json_builder_add_string_value (b, active);
  json_builder_set_member_name (b, "sub_state");
  json_builder_add_string_value (b, sub);
  json_builder_set_member_name (b, "uptime_seconds");
  if (ok && since > 0)
    json_builder_add_int_value (b, (g_get_real_time () - (gint64) since) / G_USEC_PER_SEC);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "restarts");
  json_builder_add_int_value (b, get_u (bus, path, service, "NRestarts", 'u'));
  json_builder_set_member_name (b, "main_pid");
  json_builder_add_int_value (b, get_u (bus, path, service, "MainPID", 'u'));
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, ok);
  json_builder_end_object (b);
}

JsonNode *
ctl_units_status (Ctl *ctl, gboolean *healthy)
{
  g_autoptr (sd_bus) bus = NULL;
  g_autoptr (sd_bus_message) reply = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  sd_bus_error error = SD_BUS_ERROR_NULL;
  const char *name, *path;
  int r;

  if (sd_booted () <= 0)
    return ctl_unavailable ("systemd not running", NULL);
  r = sd_bus_open_system (&bus);
  if (r < 0)
    return ctl_unavailable (g_strerror (-r), NULL);
  sd_bus_set_method_call_timeout (bus, (guint64) ctl->timeout_ms * 1000);
  r = sd_bus_call_method (bus, SYSTEMD_DEST, "/org/freedesktop/systemd1",
                          "org.freedesktop.systemd1.Manager", "ListUnitsByPatterns", &error, &reply,
                          "asas", 0, 1, "bookstore-*.service");
  if (r < 0)
    {
      g_autoptr (JsonNode) node
          = ctl_unavailable (error.message != NULL ? error.message : g_strerror (-r), NULL);
      sd_bus_error_free (&error);
      return g_steal_pointer (&node);
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "available");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "units");
  json_builder_begin_array (b);
  if (sd_bus_message_enter_container (reply, 'a', "(ssssssouso)") >= 0)
    {
      while (sd_bus_message_read (reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL, &path,
                                  NULL, NULL, NULL)
             > 0)
        add_unit (b, bus, name, path, healthy);
      sd_bus_message_exit_container (reply);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
