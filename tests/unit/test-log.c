/* test-log.c: bs_log_format_json renders one record as one JSON line; the
 * trace fields of request records, left out when there is no trace. */
#include "bs-log.h"
#include "bs-test.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* Format @fields, check the line is one valid JSON object, return it. */
static JsonObject *
format_and_parse (GLogLevelFlags level, const GLogField *fields, gsize n_fields, char **out_line)
{
  g_autofree char *line = bs_log_format_json (level, fields, n_fields);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;

  g_assert_nonnull (line);
  if (line == NULL)
    return NULL;
  if (strchr (line, '\n') != NULL || strchr (line, '\r') != NULL)
    bs_test_fail ("the record spans lines: %s", line);
  for (const char *p = line; *p != '\0'; p++)
    if ((guchar) *p < 0x20)
      {
        bs_test_fail ("raw control byte 0x%02x in %s", (guchar) *p, line);
        break;
      }
  if (!g_utf8_validate (line, -1, NULL))
    bs_test_fail ("the record is not valid UTF-8");
  if (!json_parser_load_from_data (parser, line, -1, &error))
    {
      bs_test_fail ("not JSON (%s): %s", error->message, line);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      bs_test_fail ("not a JSON object: %s", line);
      return NULL;
    }
  if (out_line != NULL)
    *out_line = g_steal_pointer (&line);
  return json_object_ref (json_node_get_object (root));
}

static const char *
member (JsonObject *o, const char *name)
{
  JsonNode *node = json_object_get_member (o, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      bs_test_fail ("member %s missing or not a string", name);
      return NULL;
    }
  return json_node_get_string (node);
}

static void
test_basic (void)
{
  const GLogField fields[] = {
    { "PRIORITY", "6", -1 },          { "GLIB_DOMAIN", "bookstore-books", -1 },
    { "REQUEST_ID", "req-123", -1 },  { "HTTP_STATUS", "200", -1 },
    { "MESSAGE", "hello world", -1 },
  };
  g_autofree char *line = NULL;
  g_autoptr (JsonObject) o
      = format_and_parse (G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS (fields), &line);
  g_autoptr (GDateTime) ts = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  if (o == NULL)
    return;
  g_assert_cmpstr (member (o, "MESSAGE"), ==, "hello world");
  g_assert_cmpstr (member (o, "REQUEST_ID"), ==, "req-123");
  g_assert_cmpstr (member (o, "GLIB_DOMAIN"), ==, "bookstore-books");
  g_assert_cmpstr (member (o, "HTTP_STATUS"), ==, "200");
  g_assert_cmpstr (member (o, "LEVEL"), ==, "info");
  g_assert_nonnull (member (o, "TIMESTAMP"));
  g_assert_false (g_str_has_suffix (line, "\n"));

  ts = g_date_time_new_from_iso8601 (member (o, "TIMESTAMP"), NULL);
  g_assert_nonnull (ts);
  if (ts != NULL)
    g_assert_cmpint (ABS (g_date_time_difference (now, ts)), <, 60 * G_USEC_PER_SEC);
}

static void
test_levels (void)
{
  static const struct
  {
    GLogLevelFlags level;
    const char *name;
  } cases[] = {
    { G_LOG_LEVEL_CRITICAL, "critical" }, { G_LOG_LEVEL_WARNING, "warning" },
    { G_LOG_LEVEL_MESSAGE, "notice" },    { G_LOG_LEVEL_INFO, "info" },
    { G_LOG_LEVEL_DEBUG, "debug" },       { G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL, "warning" },
  };
  const GLogField fields[] = { { "MESSAGE", "m", -1 } };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (JsonObject) o = format_and_parse (cases[i].level, fields, 1, NULL);
      if (o != NULL)
        g_assert_cmpstr (member (o, "LEVEL"), ==, cases[i].name);
    }
}

/* PRIORITY (journald's) and "_"-prefixed trusted fields stay out. */
static void
test_skipped_fields (void)
{
  const GLogField fields[] = {
    { "PRIORITY", "4", -1 },
    { "_PID", "1", -1 },
    { "MESSAGE", "m", -1 },
  };
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_WARNING, fields, 3, NULL);

  if (o == NULL)
    return;
  g_assert_false (json_object_has_member (o, "PRIORITY"));
  g_assert_false (json_object_has_member (o, "_PID"));
  g_assert_cmpstr (member (o, "MESSAGE"), ==, "m");
}

static void
test_newlines (void)
{
  const char *message = "line one\nline two\r\n\tindented \"quoted\" \\ back";
  const GLogField fields[] = {
    { "REQUEST_ID", "r", -1 },
    { "MESSAGE", message, -1 },
  };
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_WARNING, fields, 2, NULL);

  if (o != NULL)
    g_assert_cmpstr (member (o, "MESSAGE"), ==, message);
}

static void
test_control_characters (void)
{
  const char *message = "bell\a esc\x1b[31m nul-less \x01\x1f del\x7f";
  const GLogField fields[] = { { "MESSAGE", message, -1 } };
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_WARNING, fields, 1, NULL);

  if (o != NULL)
    g_assert_cmpstr (member (o, "MESSAGE"), ==, message);
}

static void
test_invalid_utf8 (void)
{
  const GLogField fields[] = {
    { "REQUEST_ID", "ok", -1 },
    { "HTTP_PATH", "/v1/books/\xff\xfe", -1 },
    { "MESSAGE", "bad \xc3 byte \x80 and caf\xc3\xa9", -1 },
  };
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_WARNING, fields, 3, NULL);
  const char *msg;

  if (o == NULL)
    return;
  msg = member (o, "MESSAGE");
  g_assert_nonnull (msg);
  if (msg == NULL)
    return;
  g_assert_true (g_utf8_validate (msg, -1, NULL));
  g_assert_true (g_str_has_prefix (msg, "bad "));
  g_assert_true (g_str_has_suffix (msg, "caf\xc3\xa9")); /* valid text survives */
  g_assert_true (g_str_has_prefix (member (o, "HTTP_PATH"), "/v1/books/"));
  g_assert_cmpstr (member (o, "REQUEST_ID"), ==, "ok");
}

/* Values with an explicit length are not NUL-terminated. */
static void
test_explicit_length (void)
{
  const char buffer[] = "abcdefXYZ";
  const GLogField fields[] = {
    { "MESSAGE", buffer, 6 },
    { "EMPTY", buffer, 0 },
  };
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_INFO, fields, 2, NULL);

  if (o == NULL)
    return;
  g_assert_cmpstr (member (o, "MESSAGE"), ==, "abcdef");
  g_assert_cmpstr (member (o, "EMPTY"), ==, "");
}

static void
test_long_message (void)
{
  g_autofree char *message = g_strnfill (100000, 'x');
  const GLogField fields[] = { { "MESSAGE", message, -1 } };
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_INFO, fields, 1, NULL);

  if (o != NULL)
    g_assert_cmpstr (member (o, "MESSAGE"), ==, message);
}

static void
test_no_fields (void)
{
  g_autoptr (JsonObject) o = format_and_parse (G_LOG_LEVEL_INFO, NULL, 0, NULL);

  if (o == NULL)
    return;
  g_assert_nonnull (member (o, "LEVEL"));
  g_assert_nonnull (member (o, "TIMESTAMP"));
}

/* ---- the fields the record functions pass to the writer ---------------- */

static GPtrArray *captured; /* "KEY=value" of the last record */

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  g_ptr_array_set_size (captured, 0);
  for (gsize i = 0; i < n_fields; i++)
    g_ptr_array_add (captured,
                     g_strdup_printf ("%s=%s", fields[i].key, (const char *) fields[i].value));
  return G_LOG_WRITER_HANDLED;
}

/* The value of @key in the last record, or NULL. */
static const char *
captured_value (const char *key)
{
  gsize len = strlen (key);

  for (guint i = 0; i < captured->len; i++)
    {
      const char *kv = g_ptr_array_index (captured, i);
      if (strncmp (kv, key, len) == 0 && kv[len] == '=')
        return kv + len + 1;
    }
  return NULL;
}

static void
assert_message_last (void)
{
  g_assert_cmpuint (captured->len, >, 0);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (captured, captured->len - 1), "MESSAGE="));
}

static void
test_trace_fields (void)
{
  BsTrace root, child;
  const char *message = NULL;
  GLogField fields[] = {
    { "PRIORITY", "6", -1 },
    { "GONE", NULL, -1 },
    { "KEPT", "yes", -1 },
    { "MESSAGE", "hello", -1 },
  };

  bs_trace_start (&root, NULL);
  bs_trace_child (&child, &root);

  /* a NULL value leaves its field out; the order stays */
  bs_log_fields (G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS (fields));
  g_assert_null (captured_value ("GONE"));
  g_assert_cmpstr (captured_value ("KEPT"), ==, "yes");
  assert_message_last ();

  /* the first span of a trace: no PARENT_SPAN_ID */
  bs_log_request (G_LOG_LEVEL_INFO, "req-1", &root, "root %d", 1);
  g_assert_cmpstr (captured_value ("REQUEST_ID"), ==, "req-1");
  g_assert_cmpstr (captured_value ("TRACE_ID"), ==, root.trace_id);
  g_assert_cmpstr (captured_value ("SPAN_ID"), ==, root.span_id);
  g_assert_null (captured_value ("PARENT_SPAN_ID"));
  message = captured_value ("MESSAGE");
  g_assert_cmpstr (message, ==, "root 1");
  assert_message_last ();

  bs_log_access (G_LOG_LEVEL_INFO, "req-2", &child, "GET", "/x", 200, 1.5, NULL, NULL);
  g_assert_cmpstr (captured_value ("TRACE_ID"), ==, root.trace_id);
  g_assert_cmpstr (captured_value ("SPAN_ID"), ==, child.span_id);
  g_assert_cmpstr (captured_value ("PARENT_SPAN_ID"), ==, root.span_id);
  g_assert_null (captured_value ("AUTH_SUBJECT"));
  g_assert_null (captured_value ("CLIENT_ADDRESS"));
  assert_message_last ();

  bs_log_call ("req-3", &child, "books", "GET", "/v1/books/1");
  g_assert_cmpstr (captured_value ("UPSTREAM"), ==, "books");
  g_assert_cmpstr (captured_value ("PARENT_SPAN_ID"), ==, root.span_id);
  g_assert_cmpstr (captured_value ("MESSAGE"), ==, "calling books: GET /v1/books/1");

  /* no trace at all: none of the three */
  bs_log_access (G_LOG_LEVEL_INFO, NULL, NULL, "GET", "/y", 400, 0.0, "ops", "192.0.2.7");
  g_assert_null (captured_value ("TRACE_ID"));
  g_assert_null (captured_value ("SPAN_ID"));
  g_assert_null (captured_value ("PARENT_SPAN_ID"));
  g_assert_cmpstr (captured_value ("AUTH_SUBJECT"), ==, "ops");
  g_assert_cmpstr (captured_value ("CLIENT_ADDRESS"), ==, "192.0.2.7");
  assert_message_last ();
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  captured = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_add_func ("/bs/log/format-json/basic", test_basic);
  g_test_add_func ("/bs/log/format-json/levels", test_levels);
  g_test_add_func ("/bs/log/format-json/skipped-fields", test_skipped_fields);
  g_test_add_func ("/bs/log/format-json/newlines", test_newlines);
  g_test_add_func ("/bs/log/format-json/control-characters", test_control_characters);
  g_test_add_func ("/bs/log/format-json/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/bs/log/format-json/explicit-length", test_explicit_length);
  g_test_add_func ("/bs/log/format-json/long-message", test_long_message);
  g_test_add_func ("/bs/log/format-json/no-fields", test_no_fields);
  g_test_add_func ("/bs/log/trace-fields", test_trace_fields);

  {
    int status = g_test_run ();

    g_ptr_array_unref (captured);
    return status;
  }
}
