/* test-request-id.c: bs_request_id_is_sane and bs_request_id_from_header. */
#include "bs-request-id.h"
#include "bs-test.h"

#include <glib.h>
#include <string.h>

static void
check_sane (const char *id, gboolean expected, const char *what)
{
  if (bs_request_id_is_sane (id) != expected)
    bs_test_fail ("bs_request_id_is_sane (%s) should be %s", what, expected ? "TRUE" : "FALSE");
}

static void
test_sane (void)
{
  g_autofree char *max = g_strnfill (BS_REQUEST_ID_MAX_LEN, 'a');
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *printable = NULL;
  GString *all = g_string_new (NULL);

  /* every visible ASCII character except '"' and '\\' */
  for (int c = 0x21; c < 0x7f; c++)
    if (c != '"' && c != '\\')
      g_string_append_c (all, (char) c);
  printable = g_string_free (all, FALSE);
  g_assert_cmpuint (strlen (printable), <=, BS_REQUEST_ID_MAX_LEN);

  check_sane ("abc", TRUE, "\"abc\"");
  check_sane ("a", TRUE, "\"a\"");
  check_sane (max, TRUE, "128 chars");
  check_sane (uuid, TRUE, "a UUID");
  check_sane ("req-1234_ABCD.xyz:5/6", TRUE, "punctuation");
  check_sane (printable, TRUE, "all visible ASCII but quote and backslash");
}

static void
test_insane (void)
{
  g_autofree char *too_long = g_strnfill (BS_REQUEST_ID_MAX_LEN + 1, 'a');
  g_autofree char *way_too_long = g_strnfill (100000, 'a');
  static const struct
  {
    const char *id;
    const char *what;
  } cases[] = {
    { "", "empty" },
    { "a b", "space" },
    { " abc", "leading space" },
    { "abc ", "trailing space" },
    { "a\tb", "tab" },
    { "a\nb", "newline" },
    { "abc\r\n", "CRLF" },
    { "a\rb", "CR" },
    { "a\"b", "double quote" },
    { "a\\b", "backslash" },
    { "a\x7f", "DEL" },
    { "\x01", "SOH" },
    { "a\x1b[31m", "ANSI escape" },
    { "caf\xc3\xa9", "UTF-8 e-acute" },
    { "\xe2\x80\xa8", "U+2028" },
    { "\xf0\x9f\x98\x80", "emoji" },
    { "\xff\xfe", "invalid UTF-8" },
    { "\x80", "lone continuation byte" },
  };

  check_sane (NULL, FALSE, "NULL");
  check_sane (too_long, FALSE, "129 chars");
  check_sane (way_too_long, FALSE, "100000 chars");
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_sane (cases[i].id, FALSE, cases[i].what);
}

static void
test_from_header_sane (void)
{
  g_autofree char *max = g_strnfill (BS_REQUEST_ID_MAX_LEN, 'z');
  const char *header = "client-req-42";
  g_autofree char *a = bs_request_id_from_header (header);
  g_autofree char *b = bs_request_id_from_header (max);

  g_assert_cmpstr (a, ==, header);
  g_assert_true (a != header); /* a copy, the caller frees it */
  g_assert_cmpstr (b, ==, max);
}

static void
test_from_header_insane (void)
{
  g_autofree char *too_long = g_strnfill (BS_REQUEST_ID_MAX_LEN + 1, 'a');
  const char *const bad[] = { "", "a b", "a\nb", "a\"b", "a\\b", "caf\xc3\xa9", "a\x7f", too_long };
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint round = 0; round < 50; round++)
    {
      for (gsize i = 0; i <= G_N_ELEMENTS (bad); i++)
        {
          const char *header = i < G_N_ELEMENTS (bad) ? bad[i] : NULL;
          char *id = bs_request_id_from_header (header);

          g_assert_nonnull (id);
          if (id == NULL)
            continue;
          if (!g_uuid_string_is_valid (id))
            bs_test_fail ("from_header (bad #%" G_GSIZE_FORMAT ") = \"%s\", not a UUID", i, id);
          if (!bs_request_id_is_sane (id))
            bs_test_fail ("a generated id \"%s\" is not sane itself", id);
          if (header != NULL && g_str_equal (id, header))
            bs_test_fail ("an insane header came back unchanged");
          if (!g_hash_table_add (seen, id))
            bs_test_fail ("generated id \"%s\" twice", id);
        }
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, 50 * (G_N_ELEMENTS (bad) + 1));
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  g_test_add_func ("/bs/request-id/sane", test_sane);
  g_test_add_func ("/bs/request-id/insane", test_insane);
  g_test_add_func ("/bs/request-id/from-header/sane", test_from_header_sane);
  g_test_add_func ("/bs/request-id/from-header/insane", test_from_header_insane);

  return g_test_run ();
}
