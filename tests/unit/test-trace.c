/* test-trace.c: traceparent parsing and formatting, spans, tracestate. */
#include "bs-test.h"
#include "bs-trace.h"

#include <glib.h>
#include <string.h>

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT "00f067aa0ba902b7"

static void
test_parse_valid (void)
{
  static const struct
  {
    const char *value;
    guint8 flags;
    const char *what;
  } cases[] = {
    { "00-" TRACE "-" PARENT "-01", 1, "the spec's example" },
    { "00-" TRACE "-" PARENT "-00", 0, "not sampled" },
    { "00-" TRACE "-" PARENT "-ff", 1, "unknown flags: only sampled kept" },
    { "00-" TRACE "-" PARENT "-02", 0, "an unknown flag alone" },
    { "01-" TRACE "-" PARENT "-01", 1, "a later version" },
    { "cc-" TRACE "-" PARENT "-01-what-the-future-will-be-like", 1,
      "a later version with more fields" },
    { "00-00000000000000000000000000000001-0000000000000001-01", 1, "ids of one bit" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char trace_id[BS_TRACE_ID_LEN + 1] = "", parent_id[BS_SPAN_ID_LEN + 1] = "";
      guint8 flags = 0xaa;

      if (!bs_traceparent_parse (cases[i].value, trace_id, parent_id, &flags))
        {
          bs_test_fail ("%s: \"%s\" refused", cases[i].what, cases[i].value);
          continue;
        }
      if (!bs_traceparent_is_valid (cases[i].value))
        bs_test_fail ("%s: parse and is_valid disagree", cases[i].what);
      if (flags != cases[i].flags)
        bs_test_fail ("%s: flags %02x, expected %02x", cases[i].what, flags, cases[i].flags);
      if (strlen (trace_id) != BS_TRACE_ID_LEN
          || strncmp (trace_id, cases[i].value + 3, BS_TRACE_ID_LEN) != 0)
        bs_test_fail ("%s: trace id \"%s\"", cases[i].what, trace_id);
      if (strlen (parent_id) != BS_SPAN_ID_LEN
          || strncmp (parent_id, cases[i].value + 36, BS_SPAN_ID_LEN) != 0)
        bs_test_fail ("%s: parent id \"%s\"", cases[i].what, parent_id);
    }
}

static void
test_parse_invalid (void)
{
  static const struct
  {
    const char *value;
    const char *what;
  } cases[] = {
    { NULL, "NULL" },
    { "", "empty" },
    { "garbage", "garbage" },
    { "00-" TRACE "-" PARENT "-0", "too short" },
    { "00-" TRACE "-" PARENT "-011", "version 00 one character too long" },
    { "00-" TRACE "-" PARENT "-01-extra", "version 00 with a fifth field" },
    { "00-" TRACE "0-" PARENT "-01", "trace id of 33 digits" },
    { "00-4bf92f3577b34da6a3ce929d0e0e473-" PARENT "-01", "trace id of 31 digits" },
    { "00-" TRACE "-00f067aa0ba902b-01", "parent id of 15 digits" },
    { "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01", "uppercase trace id" },
    { "00-" TRACE "-00F067AA0BA902B7-01", "uppercase parent id" },
    { "00-" TRACE "-" PARENT "-0A", "uppercase flags" },
    { "0A-" TRACE "-" PARENT "-01", "uppercase version" },
    { "00-00000000000000000000000000000000-" PARENT "-01", "all-zero trace id" },
    { "00-" TRACE "-0000000000000000-01", "all-zero parent id" },
    { "ff-" TRACE "-" PARENT "-01", "version ff" },
    { "ff-" TRACE "-" PARENT "-01-more", "version ff with more fields" },
    { "0x-" TRACE "-" PARENT "-01", "version not hex" },
    { "00-" TRACE "-" PARENT "-0g", "flags not hex" },
    { "00-4bf92f3577b34da6a3ce929d0e0e473g-" PARENT "-01", "trace id not hex" },
    { "00_" TRACE "-" PARENT "-01", "wrong separator" },
    { "00-" TRACE "-" PARENT "_01", "wrong last separator" },
    { " 00-" TRACE "-" PARENT "-01", "leading space" },
    { "00-" TRACE "-" PARENT "-01 ", "trailing space" },
    { "01-" TRACE "-" PARENT "-01x", "a later version, more without a dash" },
    { "00-" TRACE "-" PARENT "-01, 00-" TRACE "-" PARENT "-01", "two headers joined" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char trace_id[BS_TRACE_ID_LEN + 1], parent_id[BS_SPAN_ID_LEN + 1];
      guint8 flags;

      if (bs_traceparent_parse (cases[i].value, trace_id, parent_id, &flags)
          || bs_traceparent_is_valid (cases[i].value))
        bs_test_fail ("%s: \"%s\" accepted", cases[i].what,
                      cases[i].value != NULL ? cases[i].value : "(null)");
    }
}

static gboolean
is_id (const char *id, gsize len)
{
  gboolean zero = TRUE;

  if (strlen (id) != len)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    {
      if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
        return FALSE;
      zero = zero && *p == '0';
    }
  return !zero;
}

static void
test_start_continues (void)
{
  BsTrace trace;

  g_assert_true (bs_trace_start (&trace, "00-" TRACE "-" PARENT "-01"));
  g_assert_cmpstr (trace.trace_id, ==, TRACE);
  g_assert_cmpstr (trace.parent_id, ==, PARENT);
  g_assert_true (is_id (trace.span_id, BS_SPAN_ID_LEN));
  g_assert_cmpstr (trace.span_id, !=, PARENT);
  g_assert_cmpuint (trace.flags, ==, 1);
  g_assert_cmpstr (bs_trace_get_trace_id (&trace), ==, TRACE);
  g_assert_cmpstr (bs_trace_get_parent_id (&trace), ==, PARENT);

  /* the upstream decided not to sample: passed on as it is */
  g_assert_true (bs_trace_start (&trace, "00-" TRACE "-" PARENT "-00"));
  g_assert_cmpuint (trace.flags, ==, 0);
}

static void
test_start_new (void)
{
  static const char *const starts[] = {
    NULL,
    "",
    "00-00000000000000000000000000000000-" PARENT "-01",
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01",
    "ff-" TRACE "-" PARENT "-01",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (starts); i++)
    {
      BsTrace trace;

      if (bs_trace_start (&trace, starts[i]))
        bs_test_fail ("case %" G_GSIZE_FORMAT ": continued", i);
      if (!is_id (trace.trace_id, BS_TRACE_ID_LEN) || !is_id (trace.span_id, BS_SPAN_ID_LEN))
        bs_test_fail ("case %" G_GSIZE_FORMAT ": ids %s %s", i, trace.trace_id, trace.span_id);
      if (g_str_equal (trace.trace_id, TRACE))
        bs_test_fail ("case %" G_GSIZE_FORMAT ": kept the malformed header's trace id", i);
      if (trace.parent_id[0] != '\0' || bs_trace_get_parent_id (&trace) != NULL)
        bs_test_fail ("case %" G_GSIZE_FORMAT ": a parent in a new trace", i);
      if (trace.flags != BS_TRACE_FLAG_SAMPLED)
        bs_test_fail ("case %" G_GSIZE_FORMAT ": flags %02x", i, trace.flags);
    }
}

static void
test_ids_differ (void)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* more than one refill of the random pool */
  for (guint i = 0; i < 1000; i++)
    {
      BsTrace trace;

      bs_trace_start (&trace, NULL);
      if (!g_hash_table_add (seen, g_strdup (trace.trace_id))
          || !g_hash_table_add (seen, g_strdup (trace.span_id)))
        {
          bs_test_fail ("id repeated after %u spans", i);
          return;
        }
    }
}

static void
test_child_and_format (void)
{
  BsTrace parent, child, again;
  char header[BS_TRACEPARENT_LEN + 1];

  bs_trace_start (&parent, "00-" TRACE "-" PARENT "-01");
  bs_trace_child (&child, &parent);
  g_assert_cmpstr (child.trace_id, ==, TRACE);
  g_assert_cmpstr (child.parent_id, ==, parent.span_id);
  g_assert_cmpstr (child.span_id, !=, parent.span_id);
  g_assert_true (is_id (child.span_id, BS_SPAN_ID_LEN));
  g_assert_cmpuint (child.flags, ==, parent.flags);

  bs_trace_format (&child, header);
  g_assert_cmpuint (strlen (header), ==, BS_TRACEPARENT_LEN);
  g_assert_true (g_str_has_prefix (header, "00-" TRACE "-"));
  g_assert_true (g_str_has_suffix (header, "-01"));
  /* the receiver's span has the child as parent */
  g_assert_true (bs_trace_start (&again, header));
  g_assert_cmpstr (again.trace_id, ==, TRACE);
  g_assert_cmpstr (again.parent_id, ==, child.span_id);

  bs_trace_start (&parent, "00-" TRACE "-" PARENT "-00");
  bs_trace_format (&parent, header);
  g_assert_true (g_str_has_suffix (header, "-00"));
}

static void
test_no_trace_fields (void)
{
  BsTrace zeroed = { 0 };

  g_assert_null (bs_trace_get_trace_id (NULL));
  g_assert_null (bs_trace_get_span_id (NULL));
  g_assert_null (bs_trace_get_parent_id (NULL));
  g_assert_null (bs_trace_get_trace_id (&zeroed));
  g_assert_null (bs_trace_get_span_id (&zeroed));
  g_assert_null (bs_trace_get_parent_id (&zeroed));
}

static void
test_tracestate (void)
{
  static const struct
  {
    const char *value;
    gboolean valid;
  } cases[] = {
    { "congo=t61rcWkgMzE", TRUE },
    { "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", TRUE },
    { "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE", TRUE },
    { "rojo=1,,congo=2", TRUE },             /* empty members are allowed */
    { "fw529a3039@dt=XYZ", TRUE },           /* multi-tenant key */
    { "1tenant@vendor=x", TRUE },            /* a tenant id may start with a digit */
    { "a_b-c*d/e=with space inside", TRUE }, /* spaces inside a value */
    { NULL, FALSE },
    { "", FALSE },
    { ",", FALSE },
    { "novalue", FALSE },
    { "key=", FALSE },
    { "=value", FALSE },
    { "Upper=1", FALSE },
    { "1digit=1", FALSE },
    { "k=v=w", FALSE },
    { "k=trailing ", TRUE }, /* OWS after a member */
    { "k=tab\tinside", FALSE },
    { "k=\x01", FALSE },
    { "k@=1", FALSE },
    { "@v=1", FALSE },
    { "t@V=1", FALSE },
    { "t@toolongvendorid=1", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    if (bs_tracestate_is_valid (cases[i].value) != cases[i].valid)
      bs_test_fail ("tracestate \"%s\" should be %s",
                    cases[i].value != NULL ? cases[i].value : "(null)",
                    cases[i].valid ? "valid" : "invalid");
}

static void
test_tracestate_limits (void)
{
  g_autoptr (GString) members = g_string_new (NULL);
  g_autofree char *v253 = g_strnfill (253, 'v');
  g_autofree char *v254 = g_strnfill (254, 'v');
  g_autofree char *v256 = g_strnfill (256, 'v');
  g_autofree char *v257 = g_strnfill (257, 'v');
  g_autofree char *k256 = g_strnfill (256, 'k');
  g_autofree char *k257 = g_strnfill (257, 'k');
  g_autofree char *len512 = g_strconcat ("a=", v254, ",b=", v253, NULL);
  g_autofree char *len513 = g_strconcat ("a=", v254, ",b=", v254, NULL);
  g_autofree char *value256 = g_strconcat ("a=", v256, NULL);
  g_autofree char *value257 = g_strconcat ("a=", v257, NULL);
  g_autofree char *key256 = g_strconcat (k256, "=1", NULL);
  g_autofree char *key257 = g_strconcat (k257, "=1", NULL);

  for (guint i = 0; i < BS_TRACESTATE_MAX_MEMBERS; i++)
    g_string_append_printf (members, "%sk%u=%u", i > 0 ? "," : "", i, i);
  g_assert_true (bs_tracestate_is_valid (members->str));
  g_string_append (members, ",one=more");
  g_assert_false (bs_tracestate_is_valid (members->str));

  g_assert_cmpuint (strlen (len512), ==, BS_TRACESTATE_MAX_LEN);
  g_assert_true (bs_tracestate_is_valid (len512));
  g_assert_false (bs_tracestate_is_valid (len513));
  g_assert_true (bs_tracestate_is_valid (value256));
  g_assert_false (bs_tracestate_is_valid (value257));
  g_assert_true (bs_tracestate_is_valid (key256));
  g_assert_false (bs_tracestate_is_valid (key257));
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/trace/parse/valid", test_parse_valid);
  g_test_add_func ("/bs/trace/parse/invalid", test_parse_invalid);
  g_test_add_func ("/bs/trace/start/continues", test_start_continues);
  g_test_add_func ("/bs/trace/start/new", test_start_new);
  g_test_add_func ("/bs/trace/start/ids-differ", test_ids_differ);
  g_test_add_func ("/bs/trace/child-and-format", test_child_and_format);
  g_test_add_func ("/bs/trace/log-fields", test_no_trace_fields);
  g_test_add_func ("/bs/trace/tracestate", test_tracestate);
  g_test_add_func ("/bs/trace/tracestate/limits", test_tracestate_limits);
  return g_test_run ();
}
