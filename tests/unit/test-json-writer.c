/* test-json-writer.c: the exact text of bs-json-writer, and that it is JSON. */
#include "bs-json-writer.h"

#include "bs-json.h"
#include "bs-test.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* The writer's text; NULL (and a failure) unless it is one strict JSON
 * value that json-glib reads too. Returns the root node in *@root. */
static char *
finish (BsJsonWriter *writer, JsonNode **root)
{
  g_autoptr (GBytes) bytes = bs_json_writer_free_to_bytes (writer);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autofree char *text = g_strndup (data, len);
  const char *problem = NULL;
  gsize offset = 0;

  if (strlen (text) != len)
    {
      bs_test_fail ("output holds a NUL byte");
      return NULL;
    }
  if (!g_utf8_validate (text, -1, NULL))
    {
      bs_test_fail ("output is not valid UTF-8: %s", text);
      return NULL;
    }
  if (!bs_json_validate (text, len, &problem, &offset))
    {
      bs_test_fail ("bs_json_validate: %s at byte %" G_GSIZE_FORMAT " of %s", problem, offset,
                    text);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, text, (gssize) len, &error))
    {
      bs_test_fail ("json-glib: %s in %s", error->message, text);
      return NULL;
    }
  if (root != NULL)
    *root = json_node_copy (json_parser_get_root (parser));
  return g_steal_pointer (&text);
}

#define assert_output(writer, expected)                                                            \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree char *text_ = finish ((writer), NULL);                                              \
    g_assert_cmpstr (text_, ==, (expected));                                                       \
  }                                                                                                \
  G_STMT_END

static void
test_nested (void)
{
  BsJsonWriter *w = bs_json_writer_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  JsonObject *object;

  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "id");
  bs_json_writer_int (w, 1);
  bs_json_writer_member (w, "tags");
  bs_json_writer_begin_array (w);
  bs_json_writer_string (w, "a");
  bs_json_writer_int (w, 2);
  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "x");
  bs_json_writer_boolean (w, TRUE);
  bs_json_writer_member (w, "y");
  bs_json_writer_null (w);
  bs_json_writer_end_object (w);
  bs_json_writer_begin_array (w);
  bs_json_writer_begin_array (w);
  bs_json_writer_boolean (w, FALSE);
  bs_json_writer_end_array (w);
  bs_json_writer_end_array (w);
  bs_json_writer_money (w, 1299);
  bs_json_writer_end_array (w);
  bs_json_writer_member (w, "inner");
  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "deeper");
  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "n");
  bs_json_writer_int (w, -5);
  bs_json_writer_end_object (w);
  bs_json_writer_member (w, "after");
  bs_json_writer_string (w, "z");
  bs_json_writer_end_object (w);
  bs_json_writer_member (w, "last");
  bs_json_writer_money (w, 30);
  bs_json_writer_end_object (w);

  text = finish (w, &root);
  g_assert_cmpstr (text, ==,
                   "{\"id\":1,\"tags\":[\"a\",2,{\"x\":true,\"y\":null},[[false]],12.99],"
                   "\"inner\":{\"deeper\":{\"n\":-5},\"after\":\"z\"},\"last\":0.30}");
  g_assert_nonnull (root);
  if (root == NULL)
    return;
  object = json_node_get_object (root);
  g_assert_cmpint (json_object_get_size (object), ==, 4);
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (object, "tags")), ==, 5);
  g_assert_cmpstr (
      json_object_get_string_member (json_object_get_object_member (object, "inner"), "after"), ==,
      "z");
}

static void
test_top_level_array (void)
{
  BsJsonWriter *w = bs_json_writer_new ();

  bs_json_writer_begin_array (w);
  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "a");
  bs_json_writer_int (w, 1);
  bs_json_writer_end_object (w);
  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "a");
  bs_json_writer_int (w, 2);
  bs_json_writer_end_object (w);
  bs_json_writer_null (w);
  bs_json_writer_end_array (w);
  assert_output (w, "[{\"a\":1},{\"a\":2},null]");
}

static void
test_empty (void)
{
  BsJsonWriter *w;

  w = bs_json_writer_new ();
  bs_json_writer_begin_object (w);
  bs_json_writer_end_object (w);
  assert_output (w, "{}");

  w = bs_json_writer_new ();
  bs_json_writer_begin_array (w);
  bs_json_writer_end_array (w);
  assert_output (w, "[]");

  w = bs_json_writer_new ();
  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "o");
  bs_json_writer_begin_object (w);
  bs_json_writer_end_object (w);
  bs_json_writer_member (w, "a");
  bs_json_writer_begin_array (w);
  bs_json_writer_end_array (w);
  bs_json_writer_member (w, "s");
  bs_json_writer_string (w, "");
  bs_json_writer_end_object (w);
  assert_output (w, "{\"o\":{},\"a\":[],\"s\":\"\"}");

  w = bs_json_writer_new ();
  bs_json_writer_begin_array (w);
  bs_json_writer_begin_array (w);
  bs_json_writer_end_array (w);
  bs_json_writer_begin_object (w);
  bs_json_writer_end_object (w);
  bs_json_writer_begin_array (w);
  bs_json_writer_end_array (w);
  bs_json_writer_end_array (w);
  assert_output (w, "[[],{},[]]");
}

/* A string written alone, and the text it must come out as. */
static void
check_string (const char *value, const char *expected)
{
  BsJsonWriter *w = bs_json_writer_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autofree char *valid = g_utf8_make_valid (value, -1);

  bs_json_writer_string (w, value);
  text = finish (w, &root);
  if (g_strcmp0 (text, expected) != 0)
    {
      g_autofree char *escaped = g_strescape (value, NULL);
      bs_test_fail ("string \"%s\" written as %s, expected %s", escaped, text, expected);
      return;
    }
  /* and it reads back as what was written, invalid bytes replaced */
  if (root == NULL || json_node_get_value_type (root) != G_TYPE_STRING)
    bs_test_fail ("%s did not read back as a string", text);
  else if (strcmp (json_node_get_string (root), valid) != 0)
    bs_test_fail ("%s read back as something else", text);
}

static void
test_string_escapes (void)
{
  check_string ("plain", "\"plain\"");
  check_string ("", "\"\"");
  check_string ("say \"hi\"", "\"say \\\"hi\\\"\"");
  check_string ("back\\slash", "\"back\\\\slash\"");
  check_string ("\\\"", "\"\\\\\\\"\"");
  check_string ("a\nb", "\"a\\nb\"");
  check_string ("a\tb", "\"a\\tb\"");
  check_string ("a\rb", "\"a\\rb\"");
  check_string ("\x01", "\"\\u0001\"");
  check_string ("\x1f", "\"\\u001f\"");
  check_string ("\b\f", "\"\\u0008\\u000c\"");
  check_string ("x\x01y\x1fz", "\"x\\u0001y\\u001fz\"");
  check_string ("/", "\"/\"");
  check_string ("\x7f", "\"\\u007f\""); /* DEL: escaped, as in the logs */
  check_string ("</script>", "\"</script>\"");
}

/* Every control character is escaped, and reads back as itself. */
static void
test_string_all_controls (void)
{
  for (int c = 1; c < 0x20; c++)
    {
      char value[] = { 'a', (char) c, 'b', '\0' };
      g_autofree char *expected = NULL;

      switch (c)
        {
          case '\n':
            expected = g_strdup ("\"a\\nb\"");
            break;
          case '\r':
            expected = g_strdup ("\"a\\rb\"");
            break;
          case '\t':
            expected = g_strdup ("\"a\\tb\"");
            break;
          default:
            expected = g_strdup_printf ("\"a\\u%04xb\"", (guint) c);
        }
      check_string (value, expected);
    }
}

static void
test_string_utf8 (void)
{
  /* passed through byte for byte, not \u-escaped */
  check_string ("Stanisław Lem — 日本語 😀", "\"Stanisław Lem — 日本語 😀\"");
  check_string ("\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\"\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
  check_string ("\xe2\x80\xa8", "\"\xe2\x80\xa8\""); /* U+2028 is fine in JSON */
}

static void
test_string_invalid_utf8 (void)
{
  /* each bad sequence becomes U+FFFD (EF BF BD); the output stays JSON */
  check_string ("a\xff"
                "b",
                "\"a\xef\xbf\xbd"
                "b\"");
  check_string ("\x80", "\"\xef\xbf\xbd\"");
  /* truncated: g_utf8_make_valid() replaces each byte */
  check_string ("end\xe3\x81", "\"end\xef\xbf\xbd\xef\xbf\xbd\"");
  check_string ("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");                 /* overlong '/' */
  check_string ("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
  check_string ("q\"\xfe\\", "\"q\\\"\xef\xbf\xbd\\\\\"");
}

/* Hostile bytes in every position: the output is always valid JSON. */
static void
test_string_random_bytes (void)
{
  GRand *rand = g_rand_new_with_seed (8259);

  for (int i = 0; i < 2000; i++)
    {
      char value[24];
      int len = g_rand_int_range (rand, 0, (int) sizeof value);
      BsJsonWriter *w = bs_json_writer_new ();
      g_autofree char *text = NULL;

      for (int j = 0; j < len; j++)
        value[j] = (char) g_rand_int_range (rand, 1, 256);
      value[len] = '\0';
      bs_json_writer_begin_object (w);
      bs_json_writer_member (w, value);
      bs_json_writer_string (w, value);
      bs_json_writer_end_object (w);
      text = finish (w, NULL);
      if (text == NULL)
        break; /* finish() said what is wrong */
    }
  g_rand_free (rand);
}

static void
test_member_names_escaped (void)
{
  BsJsonWriter *w = bs_json_writer_new ();

  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "a\"b");
  bs_json_writer_int (w, 1);
  bs_json_writer_member (w, "c\\\n\x01");
  bs_json_writer_int (w, 2);
  bs_json_writer_member (w, "\xff");
  bs_json_writer_int (w, 3);
  bs_json_writer_end_object (w);
  assert_output (w, "{\"a\\\"b\":1,\"c\\\\\\n\\u0001\":2,\"\xef\xbf\xbd\":3}");
}

static void
test_null_string (void)
{
  BsJsonWriter *w = bs_json_writer_new ();

  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "description");
  bs_json_writer_string (w, NULL);
  bs_json_writer_member (w, "list");
  bs_json_writer_begin_array (w);
  bs_json_writer_string (w, NULL);
  bs_json_writer_string (w, "x");
  bs_json_writer_string (w, NULL);
  bs_json_writer_end_array (w);
  bs_json_writer_end_object (w);
  assert_output (w, "{\"description\":null,\"list\":[null,\"x\",null]}");
}

static void
test_scalars (void)
{
  BsJsonWriter *w = bs_json_writer_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  JsonArray *array;

  bs_json_writer_begin_array (w);
  bs_json_writer_int (w, 0);
  bs_json_writer_int (w, -1);
  bs_json_writer_int (w, G_MININT64);
  bs_json_writer_int (w, G_MAXINT64);
  bs_json_writer_boolean (w, TRUE);
  bs_json_writer_boolean (w, FALSE);
  bs_json_writer_boolean (w, 2); /* any true gboolean */
  bs_json_writer_null (w);
  bs_json_writer_end_array (w);
  text = finish (w, &root);
  g_assert_cmpstr (text, ==,
                   "[0,-1,-9223372036854775808,9223372036854775807,true,false,true,null]");
  if (root == NULL)
    return;
  array = json_node_get_array (root);
  g_assert_cmpint (json_array_get_int_element (array, 2), ==, G_MININT64);
  g_assert_cmpint (json_array_get_int_element (array, 3), ==, G_MAXINT64);
}

static void
check_money (gint64 cents, const char *expected)
{
  BsJsonWriter *w = bs_json_writer_new ();

  bs_json_writer_money (w, cents);
  assert_output (w, expected);
}

static void
test_money (void)
{
  check_money (0, "0.00");
  check_money (1, "0.01");
  check_money (30, "0.30");
  check_money (100, "1.00");
  check_money (1299, "12.99");
  check_money (19990000, "199900.00");
  check_money (G_GINT64_CONSTANT (9999999999), "99999999.99");
  check_money (G_GINT64_CONSTANT (99999999990000), "999999999900.00");
  check_money (-30, "-0.30");
  check_money (-1, "-0.01");
  check_money (-1299, "-12.99");
}

/* Money amongst other members, as an order reply writes it. */
static void
test_money_members (void)
{
  BsJsonWriter *w = bs_json_writer_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  bs_json_writer_begin_object (w);
  bs_json_writer_member (w, "quantity");
  bs_json_writer_int (w, 2);
  bs_json_writer_member (w, "unit_price");
  bs_json_writer_money (w, 1299);
  bs_json_writer_member (w, "total_price");
  bs_json_writer_money (w, 2598);
  bs_json_writer_member (w, "refund");
  bs_json_writer_money (w, -30);
  bs_json_writer_end_object (w);
  text = finish (w, &root);
  g_assert_cmpstr (text, ==,
                   "{\"quantity\":2,\"unit_price\":12.99,\"total_price\":25.98,\"refund\":-0.30}");
  if (root == NULL)
    return;
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (json_node_get_object (root), "total_price"), 25.98, 1e-9);
}

static void
test_nothing_written (void)
{
  g_autoptr (GBytes) bytes = bs_json_writer_free_to_bytes (bs_json_writer_new ());

  g_assert_cmpuint (g_bytes_get_size (bytes), ==, 0);
  bs_json_writer_free (NULL);
  /* freed unfinished, with g_autoptr: no leak (valgrind checks) */
  {
    g_autoptr (BsJsonWriter) w = bs_json_writer_new ();
    bs_json_writer_begin_object (w);
    bs_json_writer_member (w, "a");
  }
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  g_test_add_func ("/bs/json-writer/nested", test_nested);
  g_test_add_func ("/bs/json-writer/top-level-array", test_top_level_array);
  g_test_add_func ("/bs/json-writer/empty", test_empty);
  g_test_add_func ("/bs/json-writer/string/escapes", test_string_escapes);
  g_test_add_func ("/bs/json-writer/string/all-controls", test_string_all_controls);
  g_test_add_func ("/bs/json-writer/string/utf8", test_string_utf8);
  g_test_add_func ("/bs/json-writer/string/invalid-utf8", test_string_invalid_utf8);
  g_test_add_func ("/bs/json-writer/string/random-bytes", test_string_random_bytes);
  g_test_add_func ("/bs/json-writer/string/null", test_null_string);
  g_test_add_func ("/bs/json-writer/member-names", test_member_names_escaped);
  g_test_add_func ("/bs/json-writer/scalars", test_scalars);
  g_test_add_func ("/bs/json-writer/money/values", test_money);
  g_test_add_func ("/bs/json-writer/money/members", test_money_members);
  g_test_add_func ("/bs/json-writer/nothing-written", test_nothing_written);

  return g_test_run ();
}
