/* test-json.c: untrusted JSON request bodies and typed members. */
#include "bs-error.h"
#include "bs-json.h"
#include "bs-test.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* Parse @len bytes from an exactly-sized heap copy, so that valgrind and
 * ASan see any read past the end (the data is not NUL-terminated). */
static JsonObject *
parse_exact (const char *data, gsize len, GError **error)
{
  g_autofree char *copy = len > 0 ? g_memdup2 (data, len) : NULL;

  return bs_json_parse_object (copy, len, error);
}

static JsonObject *
parse_str (const char *text, GError **error)
{
  return parse_exact (text, strlen (text), error);
}

/* A body that must be rejected with @code. */
static void
check_rejected (const char *data, gsize len, BsErrorCode code, const char *what)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = parse_exact (data, len, &error);

  if (object != NULL)
    bs_test_fail ("%s: accepted as an object of %u members", what, json_object_get_size (object));
  else if (!g_error_matches (error, BS_ERROR, code))
    bs_test_fail ("%s: expected BS_ERROR code %d, got %s:%d %s", what, code,
                  error != NULL ? g_quark_to_string (error->domain) : "-",
                  error != NULL ? error->code : -1, error != NULL ? error->message : "no error");
}

static void
check_rejected_str (const char *text, BsErrorCode code)
{
  g_autofree char *what = g_strescape (text, NULL);

  check_rejected (text, strlen (text), code, what);
}

static void
test_parse_valid (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object
      = parse_str ("{\"title\":\"Dune\",\"year\":1965,\"tags\":[]}", &error);
  g_autoptr (JsonObject) empty = NULL;
  g_autoptr (JsonObject) spaced = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (object);
  if (object != NULL)
    {
      g_assert_cmpuint (json_object_get_size (object), ==, 3);
      g_assert_cmpstr (json_object_get_string_member (object, "title"), ==, "Dune");
      g_assert_cmpint (json_object_get_int_member (object, "year"), ==, 1965);
    }

  empty = parse_str ("{}", &error);
  g_assert_no_error (error);
  g_assert_nonnull (empty);

  spaced = parse_str (" \r\n\t{ \"a\" : 1 }\n", &error);
  g_assert_no_error (error);
  g_assert_nonnull (spaced);
}

/* The buffer is used for @len bytes only; what follows does not matter. */
static void
test_parse_length (void)
{
  const char *text = "{\"a\":1}GARBAGE";
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = parse_exact (text, 7, &error);

  g_assert_no_error (error);
  g_assert_nonnull (object);
  if (object != NULL)
    g_assert_cmpint (json_object_get_int_member (object, "a"), ==, 1);
}

static void
test_parse_empty (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = bs_json_parse_object (NULL, 0, &error);

  g_assert_null (object);
  g_assert_error (error, BS_ERROR, BS_ERROR_MALFORMED_JSON);
  g_clear_error (&error);
  g_clear_pointer (&object, json_object_unref);

  /* a valid buffer, but zero bytes of it */
  object = bs_json_parse_object ("{}", 0, &error);
  g_assert_null (object);
  g_assert_error (error, BS_ERROR, BS_ERROR_MALFORMED_JSON);
}

/* Whitespace alone is no JSON text (RFC 8259 needs a value); it is an empty
 * body, not a body whose top level is something other than an object. */
static void
test_parse_blank (void)
{
  check_rejected_str (" ", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("\n", BS_ERROR_MALFORMED_JSON);
  check_rejected_str (" \t\r\n ", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("\xef\xbb\xbf", BS_ERROR_MALFORMED_JSON); /* a BOM alone */
  check_rejected_str ("/* */", BS_ERROR_MALFORMED_JSON);
}

static void
test_parse_not_object (void)
{
  check_rejected_str ("null", BS_ERROR_VALIDATION);
  check_rejected_str ("[]", BS_ERROR_VALIDATION);
  check_rejected_str ("[{}]", BS_ERROR_VALIDATION);
  check_rejected_str ("\"x\"", BS_ERROR_VALIDATION);
  check_rejected_str ("42", BS_ERROR_VALIDATION);
  check_rejected_str ("true", BS_ERROR_VALIDATION);
}

static void
test_parse_malformed (void)
{
  check_rejected_str ("{", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\"}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":1,}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{a:1}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":NaN}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":\"unterminated}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":\"\\ud800\"}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("nul", BS_ERROR_MALFORMED_JSON);
}

/* Anything after the top-level object makes the body malformed: otherwise
 * a proxy and this service could disagree about what was sent. */
static void
test_parse_trailing (void)
{
  check_rejected_str ("{} x", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{},", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{}1", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{}\"x\"", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{}{}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"price\":1}{\"price\":1000}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{}[]", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{} []", BS_ERROR_MALFORMED_JSON);
}

/* Syntax json-glib tolerates that JSON (RFC 8259) does not have. */
static void
test_parse_strict (void)
{
  check_rejected_str ("{'a':1}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":01}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":1} /* comment */", BS_ERROR_MALFORMED_JSON);
}

static void
test_parse_utf8 (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) ok = parse_str ("{\"t\":\"caf\xc3\xa9 \xf0\x9f\x93\x9a\"}", &error);

  g_assert_no_error (error);
  g_assert_nonnull (ok);

  check_rejected_str ("{\"a\":\"\xff\"}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("{\"a\":\"\xc3\"}", BS_ERROR_MALFORMED_JSON);         /* truncated sequence */
  check_rejected_str ("{\"a\":\"\xc0\xaf\"}", BS_ERROR_MALFORMED_JSON);     /* overlong '/' */
  check_rejected_str ("{\"a\":\"\xed\xa0\x80\"}", BS_ERROR_MALFORMED_JSON); /* surrogate */
  check_rejected_str ("{\"\xfe\":1}", BS_ERROR_MALFORMED_JSON);
  check_rejected_str ("\xff", BS_ERROR_MALFORMED_JSON);
  /* the last byte is the start of a sequence cut off by @len */
  check_rejected ("{\"a\":1}\xe2\x82", 9, BS_ERROR_MALFORMED_JSON, "cut-off sequence");
  /* an embedded NUL */
  check_rejected ("{\"a\":1}\0{}", 10, BS_ERROR_MALFORMED_JSON, "embedded NUL");
  check_rejected ("{\"a\":\"x\0y\"}", 11, BS_ERROR_MALFORMED_JSON, "NUL inside a string");
}

/* A valid object nested @levels deep: with arrays
 * {"a":[[...[1]...]]} (one object and levels - 1 arrays), with objects
 * {"a":{"a":...{"a":1}...}}. */
static char *
nested (guint levels, gboolean arrays)
{
  GString *s = g_string_new (NULL);

  if (arrays)
    {
      g_string_append (s, "{\"a\":");
      for (guint i = 1; i < levels; i++)
        g_string_append_c (s, '[');
      g_string_append_c (s, '1');
      for (guint i = 1; i < levels; i++)
        g_string_append_c (s, ']');
      g_string_append_c (s, '}');
    }
  else
    {
      for (guint i = 0; i < levels; i++)
        g_string_append (s, "{\"a\":");
      g_string_append_c (s, '1');
      for (guint i = 0; i < levels; i++)
        g_string_append_c (s, '}');
    }
  return g_string_free (s, FALSE);
}

static void
test_depth_limit (void)
{
  g_autofree char *arrays_32 = nested (BS_JSON_MAX_DEPTH, TRUE);
  g_autofree char *arrays_33 = nested (BS_JSON_MAX_DEPTH + 1, TRUE);
  g_autofree char *objects_32 = nested (BS_JSON_MAX_DEPTH, FALSE);
  g_autofree char *objects_33 = nested (BS_JSON_MAX_DEPTH + 1, FALSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) a = parse_str (arrays_32, &error);
  g_autoptr (JsonObject) b = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (a);
  b = parse_str (objects_32, &error);
  g_assert_no_error (error);
  g_assert_nonnull (b);

  check_rejected_str (arrays_33, BS_ERROR_MALFORMED_JSON);
  check_rejected_str (objects_33, BS_ERROR_MALFORMED_JSON);
}

/* Depth is nesting, not the number of brackets: many siblings are fine. */
static void
test_depth_siblings (void)
{
  GString *s = g_string_new ("{\"a\":[");
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = NULL;

  for (guint i = 0; i < 1000; i++)
    g_string_append (s, i == 0 ? "[[]]" : ",[[]]");
  g_string_append (s, "]}");
  text = g_string_free (s, FALSE);
  object = parse_str (text, &error);
  g_assert_no_error (error);
  g_assert_nonnull (object);
}

static void
test_depth_huge (void)
{
  const gsize n = 100000;
  g_autofree char *brackets = g_strnfill (n, '[');
  g_autofree char *braces = NULL;
  GString *s = g_string_new (NULL);

  check_rejected (brackets, n, BS_ERROR_MALFORMED_JSON, "100000 × '['");

  for (gsize i = 0; i < n; i++)
    g_string_append (s, "{\"a\":");
  braces = g_string_free (s, FALSE);
  check_rejected_str (braces, BS_ERROR_MALFORMED_JSON);

  /* balanced, and a valid document apart from its depth */
  {
    GString *b = g_string_new (NULL);
    g_autofree char *text = NULL;
    g_string_append (b, "{\"a\":");
    for (gsize i = 0; i < n; i++)
      g_string_append_c (b, '[');
    for (gsize i = 0; i < n; i++)
      g_string_append_c (b, ']');
    g_string_append_c (b, '}');
    text = g_string_free (b, FALSE);
    check_rejected_str (text, BS_ERROR_MALFORMED_JSON);
  }
}

/* Brackets inside strings, escaped quotes and escaped backslashes. */
static void
test_depth_strings (void)
{
  g_autofree char *many = g_strnfill (1000, '[');
  g_autofree char *text
      = g_strdup_printf ("{\"a\":\"%s\",\"b\":\"{{{{\\\"[[[[\",\"c\":\"\\\\\"}", many);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = parse_str (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (object);
  if (object != NULL)
    {
      g_assert_cmpstr (json_object_get_string_member (object, "b"), ==, "{{{{\"[[[[");
      g_assert_cmpstr (json_object_get_string_member (object, "c"), ==, "\\");
    }

  /* A string ending in an escaped backslash ends there: the brackets after
   * it count again. 1 + 32 levels, valid JSON that only the depth check
   * refuses. */
  {
    g_autofree char *open = g_strnfill (BS_JSON_MAX_DEPTH, '[');
    g_autofree char *close = g_strnfill (BS_JSON_MAX_DEPTH, ']');
    g_autofree char *t = g_strdup_printf ("{\"x\":\"\\\\\",\"y\":%s%s}", open, close);
    check_rejected_str (t, BS_ERROR_MALFORMED_JSON);
  }

  /* Closing brackets inside a string do not lower the depth either. */
  {
    g_autofree char *open = g_strnfill (BS_JSON_MAX_DEPTH, '[');
    g_autofree char *close = g_strnfill (BS_JSON_MAX_DEPTH, ']');
    g_autofree char *t = g_strdup_printf ("{\"s\":\"%s\",\"y\":%s%s}", close, open, close);
    check_rejected_str (t, BS_ERROR_MALFORMED_JSON);
  }
}

/* ---- members ---- */

static JsonObject *
object_from (const char *text)
{
  g_autoptr (GError) error = NULL;
  JsonObject *object = parse_str (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (object);
  return object;
}

static void
test_check_members (void)
{
  const char *const allowed[] = { "title", "author", "price", NULL };
  const char *const none[] = { NULL };
  g_autoptr (JsonObject) good = object_from ("{\"title\":\"x\",\"price\":1}");
  g_autoptr (JsonObject) empty = object_from ("{}");
  g_autoptr (JsonObject) extra = object_from ("{\"title\":\"x\",\"isbn\":\"y\"}");
  g_autoptr (JsonObject) prefixed = object_from ("{\"titl\":\"x\"}");
  g_autoptr (JsonObject) cased = object_from ("{\"Title\":\"x\"}");
  g_autoptr (GError) error = NULL;

  if (good == NULL || empty == NULL || extra == NULL || prefixed == NULL || cased == NULL)
    return;

  g_assert_true (bs_json_check_members (good, allowed, &error));
  g_assert_no_error (error);
  g_assert_true (bs_json_check_members (empty, allowed, &error));
  g_assert_no_error (error);
  g_assert_true (bs_json_check_members (empty, none, &error));
  g_assert_no_error (error);

  g_assert_false (bs_json_check_members (extra, allowed, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
  if (error != NULL)
    g_assert_nonnull (strstr (error->message, "isbn"));
  g_clear_error (&error);

  g_assert_false (bs_json_check_members (prefixed, allowed, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
  g_clear_error (&error);

  g_assert_false (bs_json_check_members (cased, allowed, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
  g_clear_error (&error);

  g_assert_false (bs_json_check_members (good, none, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
}

static void
test_get_string (void)
{
  g_autoptr (JsonObject) o = object_from ("{\"plain\":\"Dune\",\"padded\":\"  Dune \\t\\n\","
                                          "\"blank\":\"   \",\"empty\":\"\",\"inner\":\"a  b\"}");
  g_autoptr (GError) error = NULL;
  g_autofree char *plain = NULL;
  g_autofree char *padded = NULL;
  g_autofree char *inner = NULL;
  g_autofree char *blank_ok = NULL;
  char *absent = (char *) "untouched";

  if (o == NULL)
    return;

  g_assert_true (bs_json_get_string (o, "plain", FALSE, 100, &plain, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (plain, ==, "Dune");

  g_assert_true (bs_json_get_string (o, "padded", FALSE, 100, &padded, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (padded, ==, "Dune");

  g_assert_true (bs_json_get_string (o, "inner", FALSE, 100, &inner, &error));
  g_assert_cmpstr (inner, ==, "a  b");

  g_assert_true (bs_json_get_string (o, "blank", TRUE, 100, &blank_ok, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (blank_ok, ==, "");

  g_assert_true (bs_json_get_string (o, "missing", FALSE, 100, &absent, &error));
  g_assert_no_error (error);
  g_assert_null (absent);
}

static void
test_get_string_blank (void)
{
  g_autoptr (JsonObject) o = object_from ("{\"blank\":\"  \\t \",\"empty\":\"\"}");
  const char *const members[] = { "blank", "empty" };

  if (o == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (members); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = NULL;

      g_assert_false (bs_json_get_string (o, members[i], FALSE, 100, &out, &error));
      g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
      g_assert_null (out);
      if (error != NULL)
        g_assert_nonnull (strstr (error->message, members[i]));
    }
}

static void
test_get_string_wrong_type (void)
{
  g_autoptr (JsonObject) o = object_from ("{\"n\":5,\"d\":5.5,\"b\":true,\"z\":null,"
                                          "\"a\":[\"x\"],\"o\":{\"x\":\"y\"}}");
  const char *const members[] = { "n", "d", "b", "z", "a", "o" };

  if (o == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (members); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = NULL;

      if (bs_json_get_string (o, members[i], TRUE, 100, &out, &error))
        bs_test_fail ("member \"%s\" accepted as string \"%s\"", members[i], out);
      else if (!g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
        bs_test_fail ("member \"%s\": wrong error", members[i]);
      else if (strstr (error->message, members[i]) == NULL)
        bs_test_fail ("member \"%s\": message \"%s\" does not name it", members[i], error->message);
    }
}

/* Lengths count characters after trimming, not bytes. */
static void
test_get_string_max_chars (void)
{
  /* "é" is 2 bytes, "📚" 4 bytes */
  g_autoptr (JsonObject) o
      = object_from ("{\"ascii3\":\"abc\",\"ascii4\":\"abcd\","
                     "\"e3\":\"\xc3\xa9\xc3\xa9\xc3\xa9\","
                     "\"e4\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\","
                     "\"books3\":\"\xf0\x9f\x93\x9a\xf0\x9f\x93\x9a\xf0\x9f\x93\x9a\","
                     "\"padded3\":\"   abc   \","
                     "\"escaped3\":\"\\u00e9\\u00e9\\u00e9\"}");
  static const struct
  {
    const char *member;
    gboolean ok;
  } cases[] = {
    { "ascii3", TRUE }, { "ascii4", FALSE }, { "e3", TRUE },       { "e4", FALSE },
    { "books3", TRUE }, { "padded3", TRUE }, { "escaped3", TRUE },
  };

  if (o == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = NULL;
      gboolean ok = bs_json_get_string (o, cases[i].member, FALSE, 3, &out, &error);

      if (ok != cases[i].ok)
        bs_test_fail ("member \"%s\" with max 3 chars: %s", cases[i].member,
                      ok ? "accepted" : error->message);
      else if (!ok && !g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
        bs_test_fail ("member \"%s\": wrong error", cases[i].member);
    }

  /* max_chars 0 with allow_blank: only an empty string */
  {
    g_autoptr (JsonObject) z = object_from ("{\"e\":\"\",\"x\":\"x\"}");
    g_autoptr (GError) error = NULL;
    g_autofree char *e = NULL;
    g_autofree char *x = NULL;
    if (z == NULL)
      return;
    g_assert_true (bs_json_get_string (z, "e", TRUE, 0, &e, &error));
    g_assert_no_error (error);
    g_assert_false (bs_json_get_string (z, "x", TRUE, 0, &x, &error));
    g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
  }
}

static void
check_int (JsonObject *o, const char *member, gint64 min, gint64 max, gboolean expected_ok,
           gint64 expected)
{
  g_autoptr (GError) error = NULL;
  gboolean present = FALSE;
  gint64 out = -4242;
  gboolean ok = bs_json_get_int (o, member, min, max, &present, &out, &error);

  if (ok && !expected_ok)
    bs_test_fail ("get_int (\"%s\", [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                  "]) accepted as %" G_GINT64_FORMAT,
                  member, min, max, out);
  else if (!ok && expected_ok)
    bs_test_fail ("get_int (\"%s\", [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]) failed: %s",
                  member, min, max, error->message);
  else if (ok && out != expected)
    bs_test_fail ("get_int (\"%s\") = %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT, member,
                  out, expected);
  else if (!ok && !g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
    bs_test_fail ("get_int (\"%s\"): wrong error", member);
  else if (!ok && strstr (error->message, member) == NULL)
    bs_test_fail ("get_int (\"%s\"): message \"%s\" does not name it", member, error->message);
  if (!present)
    bs_test_fail ("get_int (\"%s\"): present is FALSE for a member that is there", member);
}

static void
test_get_int (void)
{
  g_autoptr (JsonObject) o = object_from ("{\"five\":5,\"zero\":0,\"neg\":-3,"
                                          "\"max\":9223372036854775807,"
                                          "\"min\":-9223372036854775808,"
                                          "\"string\":\"5\",\"frac\":5.5,\"whole\":5.0,"
                                          "\"exp\":1e2,\"bool\":true,\"null\":null,"
                                          "\"array\":[5],\"object\":{\"a\":5}}");

  if (o == NULL)
    return;
  check_int (o, "five", 1, 10, TRUE, 5);
  check_int (o, "five", 5, 5, TRUE, 5); /* bounds inclusive */
  check_int (o, "zero", 0, 10, TRUE, 0);
  check_int (o, "neg", -10, 10, TRUE, -3);
  check_int (o, "max", G_MININT64, G_MAXINT64, TRUE, G_MAXINT64);
  check_int (o, "min", G_MININT64, G_MAXINT64, TRUE, G_MININT64);

  check_int (o, "five", 6, 10, FALSE, 0);
  check_int (o, "five", 1, 4, FALSE, 0);
  check_int (o, "zero", 1, 10, FALSE, 0);
  check_int (o, "neg", 0, 10, FALSE, 0);
  check_int (o, "max", 0, G_MAXINT32, FALSE, 0);
  check_int (o, "min", G_MININT32, 0, FALSE, 0);
  check_int (o, "string", 0, 10, FALSE, 0);
  check_int (o, "frac", 0, 10, FALSE, 0);
  check_int (o, "whole", 0, 10, FALSE, 0);
  check_int (o, "exp", 0, 1000, FALSE, 0);
  check_int (o, "bool", 0, 10, FALSE, 0);
  check_int (o, "null", 0, 10, FALSE, 0);
  check_int (o, "array", 0, 10, FALSE, 0);
  check_int (o, "object", 0, 10, FALSE, 0);
}

/* Integer literals beyond gint64 must not come back as some other number
 * that happens to be in range. */
/* json-glib 1.6 wraps integer literals outside 64 bits (-18446744073709551611
 * reads as 5), so the request parser refuses them before json-glib sees them:
 * no such value can ever reach bs_json_get_int(). The body is valid JSON, so
 * it is a validation error (400 VALIDATION_ERROR), not MALFORMED_JSON. */
static void
test_get_int_overflow (void)
{
  static const char *const literals[] = {
    "9223372036854775808",   "18446744073709551621",  "99999999999999999999",
    "-18446744073709551611", "-99999999999999999999", "-9223372036854775809",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (literals); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"a\":%s}", literals[i]);
      check_rejected_str (text, BS_ERROR_VALIDATION);
    }
  {
    g_autoptr (JsonObject) o
        = object_from ("{\"max\":9223372036854775807,\"min\":-9223372036854775808}");
    check_int (o, "max", G_MININT64, G_MAXINT64, TRUE, G_MAXINT64);
    check_int (o, "min", G_MININT64, G_MAXINT64, TRUE, G_MININT64);
    check_int (o, "max", 1, 100, FALSE, 0);
  }
}

/* A number no field can hold is a validation error whose message says what
 * is wrong with which member, never "malformed". */
static void
check_number_refused (const char *body, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = parse_str (body, &error);

  if (object != NULL)
    bs_test_fail ("%s accepted", body);
  else if (!g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
    bs_test_fail ("%s: not a validation error: %s", body, error->message);
  else if (strstr (error->message, needle) == NULL || strstr (error->message, "malformed") != NULL)
    bs_test_fail ("%s: message \"%s\" lacks \"%s\" or says malformed", body, error->message,
                  needle);
}

static void
test_numbers_out_of_range (void)
{
  check_number_refused ("{\"book_id\":99999999999999999999}", "book_id: the number");
  check_number_refused ("{\"book_id\":99999999999999999999}", "out of range");
  check_number_refused ("{\"quantity\":-9223372036854775809}", "quantity");
  check_number_refused ("{\"quantity\":-9223372036854775809}", "64 bits");
  check_number_refused ("{\"price\":1e400}", "price: the number 1e400 is out of range");
  check_number_refused ("{\"price\":-1E+999}", "out of range");
  check_number_refused ("{\"a\":{\"b\":[1e999]}}", "a: the number 1e999");
  check_number_refused ("[1e999]", "the number 1e999 is out of range");
  /* a long literal is cut in the message */
  {
    g_autofree char *digits = g_strnfill (5000, '9');
    g_autofree char *body = g_strdup_printf ("{\"price\":%s}", digits);
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonObject) object = parse_str (body, &error);

    g_assert_null (object);
    g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
    if (error != NULL)
      g_assert_cmpuint (strlen (error->message), <, 200);
  }
}

/* json-glib keeps a double, not the text: a number whose double does not
 * give back exactly what was written is refused before it can be misread. */
static void
test_numbers_inexact (void)
{
  static const char *const refused[] = {
    "0.10000000000000000001",
    "1.0000000000000000001",
    "0.10000000000000001",
    "0.1000000000000000055511151231257827",
    "1e-400",
    "123456789012345678.5",
  };
  static const char *const kept[] = {
    "0.1",
    "0.10000000000000000000",
    "1.500",
    "2.675",
    "0.30000000000000004",
    "-0.0",
    "1e300",
    "5e-324",
    "99999999.99",
    "1.7976931348623157e308",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"price\":%s}", refused[i]);
      check_number_refused (body, "price: the number");
      check_number_refused (body, "precision");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (kept); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"price\":%s}", kept[i]);
      g_autoptr (JsonObject) object = object_from (body);

      if (object != NULL
          && json_object_get_double_member (object, "price") != g_ascii_strtod (kept[i], NULL))
        bs_test_fail ("%s read as %.17g", kept[i], json_object_get_double_member (object, "price"));
    }
}

/* Text members follow bs-text.h: no C0 (but TAB, LF, CR), DEL or C1
 * controls; trimmed of Unicode whitespace; invisible-only is blank. */
static void
test_get_string_rules (void)
{
  g_autoptr (JsonObject) o = object_from (
      "{\"del\":\"a\\u007fb\",\"nel\":\"a\\u0085b\",\"csi\":\"\\u009b31m\",\"raw_c1\":"
      "\"a\xc2\x9f\","
      "\"nbsp\":\"\\u00a0\",\"zwsp\":\"\\u200b\\u2060\\ufeff\",\"padded\":\"\\u3000Dune\\u00a0\","
      "\"zw_text\":\"\\u200bDune\",\"tab\":\"a\\tb\"}");
  static const struct
  {
    const char *member;
    const char *needle; /* NULL: accepted */
    const char *value;
  } cases[] = {
    { "del", "control", NULL },
    { "nel", "U+0085", NULL },
    { "csi", "U+009B", NULL },
    { "raw_c1", "control", NULL },
    { "nbsp", "blank", NULL },
    { "zwsp", "blank", NULL },
    { "padded", NULL, "Dune" },
    { "zw_text", NULL,
      "\xe2\x80\x8b"
      "Dune" },
    { "tab", NULL, "a\tb" },
  };

  if (o == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = NULL;
      gboolean ok = bs_json_get_string (o, cases[i].member, FALSE, 100, &out, &error);

      if (cases[i].needle == NULL && (!ok || g_strcmp0 (out, cases[i].value) != 0))
        bs_test_fail ("%s: refused or wrong value", cases[i].member);
      else if (cases[i].needle != NULL
               && (ok || strstr (error->message, cases[i].needle) == NULL
                   || strstr (error->message, cases[i].member) == NULL))
        bs_test_fail ("%s: accepted, or message lacks \"%s\"", cases[i].member, cases[i].needle);
    }
}

static void
test_get_int_absent (void)
{
  g_autoptr (JsonObject) o = object_from ("{\"a\":1}");
  g_autoptr (GError) error = NULL;
  gboolean present = TRUE;
  gint64 out = 77;

  if (o == NULL)
    return;
  g_assert_true (bs_json_get_int (o, "b", 0, 10, &present, &out, &error));
  g_assert_no_error (error);
  g_assert_false (present);
  g_assert_cmpint (out, ==, 77); /* left alone */

  /* absent is fine even when 0 is outside the range */
  g_assert_true (bs_json_get_int (o, "b", 5, 10, &present, &out, &error));
  g_assert_false (present);
}

static void
test_to_string (void)
{
  g_autoptr (JsonObject) o = object_from ("{\"a\" : [ 1, 2 ] , \"b\" : \"x\\ny\" }");
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *text = NULL;
  gsize length = 0;

  if (o == NULL)
    return;
  node = json_node_init_object (json_node_alloc (), o);
  text = bs_json_to_string (node, &length);
  g_assert_cmpstr (text, ==, "{\"a\":[1,2],\"b\":\"x\\ny\"}");
  g_assert_cmpuint (length, ==, strlen (text));
}

/* The output is JSON (RFC 8259): no raw control characters in strings,
 * all of U+0001..U+001F escaped. */
static void
test_to_string_control_characters (void)
{
  char all[32];
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_VALUE);
  g_autoptr (JsonNode) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  for (int c = 1; c < 0x20; c++)
    all[c - 1] = (char) c;
  all[31] = '\0';
  json_node_set_string (node, all);
  text = bs_json_to_string (node, NULL);
  for (const char *p = text; *p != '\0'; p++)
    if ((guchar) *p < 0x20)
      bs_test_fail ("raw control byte 0x%02x in the output", (guchar) *p);
  back = json_from_string (text, &error);
  g_assert_no_error (error);
  if (back != NULL)
    g_assert_cmpstr (json_node_get_string (back), ==, all);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  g_test_add_func ("/bs/json/parse/valid", test_parse_valid);
  g_test_add_func ("/bs/json/parse/length", test_parse_length);
  g_test_add_func ("/bs/json/parse/empty", test_parse_empty);
  g_test_add_func ("/bs/json/parse/blank", test_parse_blank);
  g_test_add_func ("/bs/json/parse/not-object", test_parse_not_object);
  g_test_add_func ("/bs/json/parse/malformed", test_parse_malformed);
  g_test_add_func ("/bs/json/parse/trailing", test_parse_trailing);
  g_test_add_func ("/bs/json/parse/strict", test_parse_strict);
  g_test_add_func ("/bs/json/parse/utf8", test_parse_utf8);
  g_test_add_func ("/bs/json/depth/limit", test_depth_limit);
  g_test_add_func ("/bs/json/depth/siblings", test_depth_siblings);
  g_test_add_func ("/bs/json/depth/huge", test_depth_huge);
  g_test_add_func ("/bs/json/depth/strings", test_depth_strings);
  g_test_add_func ("/bs/json/check-members", test_check_members);
  g_test_add_func ("/bs/json/get-string/values", test_get_string);
  g_test_add_func ("/bs/json/get-string/blank", test_get_string_blank);
  g_test_add_func ("/bs/json/get-string/wrong-type", test_get_string_wrong_type);
  g_test_add_func ("/bs/json/get-string/max-chars", test_get_string_max_chars);
  g_test_add_func ("/bs/json/get-int/values", test_get_int);
  g_test_add_func ("/bs/json/get-int/overflow", test_get_int_overflow);
  g_test_add_func ("/bs/json/get-int/absent", test_get_int_absent);
  g_test_add_func ("/bs/json/numbers/out-of-range", test_numbers_out_of_range);
  g_test_add_func ("/bs/json/numbers/inexact", test_numbers_inexact);
  g_test_add_func ("/bs/json/get-string/rules", test_get_string_rules);
  g_test_add_func ("/bs/json/to-string/compact", test_to_string);
  g_test_add_func ("/bs/json/to-string/control-characters", test_to_string_control_characters);

  return g_test_run ();
}
