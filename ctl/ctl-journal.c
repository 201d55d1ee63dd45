/* ctl-journal.c: sd-journal, matching TRACE_ID=; every daemon writes it on
 * each record of a traced request or job (docs/events.md). */
#include "ctl-journal.h"

#include <string.h>
#include <systemd/sd-journal.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sd_journal, sd_journal_close)

/* A field's value without "NAME=", or NULL. */
static char *
field (sd_journal *j, const char *name)
{
  const void *data;
  size_t length;
  size_t prefix = strlen (name) + 1;

  if (sd_journal_get_data (j, name, &data, &length) < 0 || length < prefix)
    return NULL;
  return g_strndup ((const char *) data + prefix, length - prefix);
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

JsonNode *
ctl_journal_trace (const char *trace_id, guint limit)
{
  g_autoptr (sd_journal) j = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *match = NULL;
  guint64 usage = 0;
  guint n = 0;
  int r;

  if (trace_id == NULL)
    return ctl_unavailable ("no trace id: the order's event has no traceparent", "entries");
  r = sd_journal_open (&j, SD_JOURNAL_LOCAL_ONLY);
  if (r < 0)
    return ctl_unavailable (g_strerror (-r), "entries");
  if (sd_journal_get_usage (j, &usage) < 0 || usage == 0)
    return ctl_unavailable ("no journal on this host (or not readable: root, or the groups "
                            "systemd-journal or adm)",
                            "entries");
  match = g_strconcat ("TRACE_ID=", trace_id, NULL);
  sd_journal_add_match (j, match, 0);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "available");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_set_member_name (b, "entries");
  json_builder_begin_array (b);
  while (n < limit && sd_journal_next (j) > 0)
    {
      guint64 usec = 0;
      g_autofree char *unit = field (j, "_SYSTEMD_UNIT");
      g_autofree char *identifier = field (j, "SYSLOG_IDENTIFIER");
      g_autofree char *priority = field (j, "PRIORITY");
      g_autofree char *message = field (j, "MESSAGE");

      sd_journal_get_realtime_usec (j, &usec);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "time_us");
      json_builder_add_int_value (b, (gint64) usec);
      add_string (b, "unit", unit);
      add_string (b, "identifier", identifier);
      add_string (b, "priority", priority);
      add_string (b, "message", message);
      json_builder_end_object (b);
      n++;
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
