/* bs-log.c: one writer for every log call; REQUEST_ID and friends as fields. */
#include "bs-log.h"

#include "bs-json-writer.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gboolean use_journald = FALSE;
static BsAccessLog access_mode = BS_ACCESS_LOG_ALL;
static guint access_max_per_s = 0;

/* The budget of successful-request records in the current second, shared by
 * every event loop: only a request about to be logged takes the lock, and
 * writing the record costs far more. */
static GMutex access_lock;
static gint64 access_window_s;
static guint access_in_window;
static guint64 access_left_out;

static const char *
level_name (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "critical"; /* G_LOG_LEVEL_ERROR aborts; we never use it */
  if (level & G_LOG_LEVEL_CRITICAL)
    return "critical";
  if (level & G_LOG_LEVEL_WARNING)
    return "warning";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "notice";
  if (level & G_LOG_LEVEL_INFO)
    return "info";
  return "debug";
}

static void
append_member (GString *out, const char *key, const char *value, gssize length)
{
  if (out->str[out->len - 1] != '{')
    g_string_append_c (out, ',');
  bs_json_append_string (out, key, -1);
  g_string_append_c (out, ':');
  bs_json_append_string (out, value, length);
}

char *
bs_log_format_json (GLogLevelFlags log_level, const GLogField *fields, gsize n_fields)
{
  GString *out = g_string_sized_new (256);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *timestamp = g_date_time_format_iso8601 (now);

  g_string_append_c (out, '{');
  append_member (out, "TIMESTAMP", timestamp, -1);
  append_member (out, "LEVEL", level_name (log_level), -1);
  for (gsize i = 0; i < n_fields; i++)
    {
      const GLogField *f = &fields[i];

      if (f->key[0] == '_' || g_str_equal (f->key, "PRIORITY")
          || g_str_equal (f->key, "GLIB_OLD_LOG_API") || f->value == NULL)
        continue;
      append_member (out, f->key, f->value, f->length);
    }
  g_string_append_c (out, '}');
  return g_string_free (out, FALSE);
}

GLogWriterOutput
bs_log_writer (GLogLevelFlags log_level, const GLogField *fields, gsize n_fields,
               gpointer user_data)
{
  g_autofree char *line = NULL;

  /* INFO and above always go out (access records are INFO); DEBUG only when
   * G_MESSAGES_DEBUG names the domain, as with GLib's default writer. */
  if (log_level & G_LOG_LEVEL_DEBUG)
    {
      const char *domain = NULL;
      for (gsize i = 0; i < n_fields; i++)
        if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
          domain = fields[i].value;
      if (g_log_writer_default_would_drop (log_level, domain))
        return G_LOG_WRITER_HANDLED;
    }

  if (use_journald
      && g_log_writer_journald (log_level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
    return G_LOG_WRITER_HANDLED;

  line = bs_log_format_json (log_level, fields, n_fields);
  {
    /* one write per record, so lines from concurrent writers never interleave */
    gsize len = strlen (line);
    g_autofree char *with_newline = g_realloc (g_steal_pointer (&line), len + 2);
    with_newline[len] = '\n';
    with_newline[len + 1] = '\0';
    fwrite (with_newline, 1, len + 1, stderr);
  }
  return G_LOG_WRITER_HANDLED;
}

void
bs_log_init (void)
{
  use_journald = g_log_writer_is_journald (fileno (stderr));
  g_log_writer_default_set_use_stderr (TRUE);
  g_log_set_writer_func (bs_log_writer, NULL, NULL);
}

const char *
bs_log_priority (GLogLevelFlags level)
{
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return "2";
  if (level & G_LOG_LEVEL_WARNING)
    return "4";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "5";
  if (level & G_LOG_LEVEL_INFO)
    return "6";
  return "7";
}

void
bs_log_fields (GLogLevelFlags level, GLogField *fields, gsize n_fields)
{
  gsize n = 0;

  for (gsize i = 0; i < n_fields; i++)
    if (fields[i].value != NULL)
      fields[n++] = fields[i];
  g_log_structured_array (level, fields, n);
}

void
bs_log_request_full (const char *log_domain, GLogLevelFlags level, const char *request_id,
                     const BsTrace *trace, const char *file, const char *line, const char *func,
                     const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;
  GLogField fields[] = {
    { "PRIORITY", bs_log_priority (level), -1 },
    { "GLIB_DOMAIN", log_domain, -1 },
    { "REQUEST_ID", request_id != NULL ? request_id : "-", -1 },
    BS_TRACE_LOG_FIELDS (trace),
    { "CODE_FILE", file, -1 },
    { "CODE_LINE", line, -1 },
    { "CODE_FUNC", func, -1 },
    { "MESSAGE", NULL, -1 }, /* MESSAGE last: journald drops fields after it */
  };

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  fields[G_N_ELEMENTS (fields) - 1].value = message;
  bs_log_fields (level, fields, G_N_ELEMENTS (fields));
}

void
bs_log_set_access (BsAccessLog mode, guint max_per_s)
{
  access_mode = mode;
  access_max_per_s = max_per_s;
}

/* TRUE when a successful request's record fits this second's budget; sets
 * *@left_out to the records left out before it, to say so once. */
static gboolean
access_within_budget (guint64 *left_out)
{
  gint64 now_s = g_get_monotonic_time () / G_USEC_PER_SEC;
  gboolean ok;

  *left_out = 0;
  g_mutex_lock (&access_lock);
  if (now_s != access_window_s)
    {
      access_window_s = now_s;
      access_in_window = 0;
    }
  ok = access_in_window < access_max_per_s;
  if (ok)
    {
      access_in_window++;
      *left_out = access_left_out;
      access_left_out = 0;
    }
  else
    access_left_out++;
  g_mutex_unlock (&access_lock);
  return ok;
}

gboolean
bs_access_log_from_string (const char *text, BsAccessLog *mode)
{
  static const char *const names[] = { "all", "errors", "off" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_strcmp0 (text, names[i]) == 0)
      {
        *mode = (BsAccessLog) i;
        return TRUE;
      }
  return FALSE;
}

/* Whether the record of a successful request (or of a call it makes) goes
 * out: ACCESS_LOG=all and within ACCESS_LOG_MAX_PER_S. The first record
 * after some were left out is preceded by one that says how many. */
static gboolean
success_record_allowed (const char *log_domain)
{
  guint64 left_out = 0;
  char count[32];
  g_autofree char *note = NULL;

  if (access_mode != BS_ACCESS_LOG_ALL)
    return FALSE;
  if (access_max_per_s == 0)
    return TRUE;
  if (!access_within_budget (&left_out))
    return FALSE;
  if (left_out == 0)
    return TRUE;
  g_snprintf (count, sizeof count, "%" G_GUINT64_FORMAT, left_out);
  note = g_strdup_printf ("access log: %s records of successful requests left out (over "
                          "ACCESS_LOG_MAX_PER_S=%u)",
                          count, access_max_per_s);
  {
    GLogField fields[] = {
      { "PRIORITY", bs_log_priority (G_LOG_LEVEL_INFO), -1 },
      { "GLIB_DOMAIN", log_domain, -1 },
      { "ACCESS_LOG_LEFT_OUT", count, -1 },
      { "MESSAGE", note, -1 },
    };
    g_log_structured_array (G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS (fields));
  }
  return TRUE;
}

void
bs_log_access_full (const char *log_domain, GLogLevelFlags level, const char *request_id,
                    const BsTrace *trace, const char *method, const char *path, guint status,
                    double duration_ms, const char *auth_subject, const char *client)
{
  char status_buf[16];
  char duration_buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_autofree char *message = NULL;

  if (access_mode == BS_ACCESS_LOG_OFF)
    return;
  if (status < 400 && !success_record_allowed (log_domain))
    return;

  g_snprintf (status_buf, sizeof status_buf, "%u", status);
  g_ascii_formatd (duration_buf, sizeof duration_buf, "%.3f", duration_ms);
  message = g_strdup_printf ("%s %s %u %sms", method, path, status, duration_buf);
  {
    GLogField fields[] = {
      { "PRIORITY", bs_log_priority (level), -1 },
      { "GLIB_DOMAIN", log_domain, -1 },
      { "REQUEST_ID", request_id != NULL ? request_id : "-", -1 },
      BS_TRACE_LOG_FIELDS (trace),
      { "HTTP_METHOD", method, -1 },
      { "HTTP_PATH", path, -1 },
      { "HTTP_STATUS", status_buf, -1 },
      { "DURATION_MS", duration_buf, -1 },
      { "AUTH_SUBJECT", auth_subject, -1 }, /* left out when NULL */
      { "CLIENT_ADDRESS", client, -1 },     /* likewise */
      { "MESSAGE", message, -1 },
    };

    bs_log_fields (level, fields, G_N_ELEMENTS (fields));
  }
}

void
bs_log_call_full (const char *log_domain, const char *request_id, const BsTrace *trace,
                  const char *upstream, const char *method, const char *path)
{
  g_autofree char *message = NULL;

  if (!success_record_allowed (log_domain))
    return;
  message = g_strdup_printf ("calling %s: %s %s", upstream, method, path);
  {
    GLogField fields[] = {
      { "PRIORITY", bs_log_priority (G_LOG_LEVEL_INFO), -1 },
      { "GLIB_DOMAIN", log_domain, -1 },
      { "REQUEST_ID", request_id != NULL ? request_id : "-", -1 },
      BS_TRACE_LOG_FIELDS (trace),
      { "UPSTREAM", upstream, -1 },
      { "UPSTREAM_METHOD", method, -1 },
      { "UPSTREAM_PATH", path, -1 },
      { "MESSAGE", message, -1 },
    };

    bs_log_fields (G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS (fields));
  }
}
