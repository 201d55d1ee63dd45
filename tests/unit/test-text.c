/* test-text.c: the rule for client text: forbidden controls, trimming,
 * blankness (bs-text.h). */
#include "bs-error.h"
#include "bs-test.h"
#include "bs-text.h"

#include <string.h>

static void
test_forbidden_controls (void)
{
  for (gunichar c = 0; c < 0x20; c++)
    if (bs_text_is_forbidden_control (c) != (c != '\t' && c != '\n' && c != '\r'))
      bs_test_fail ("C0 U+%04X", c);
  for (gunichar c = 0x7f; c <= 0x9f; c++) /* DEL and C1 */
    if (!bs_text_is_forbidden_control (c))
      bs_test_fail ("U+%04X allowed", c);
  for (gunichar c = 0x20; c < 0x7f; c++)
    if (bs_text_is_forbidden_control (c))
      bs_test_fail ("printable U+%04X refused", c);
  g_assert_false (bs_text_is_forbidden_control (0xa0));
  g_assert_false (bs_text_is_forbidden_control (0x200b));
  g_assert_false (bs_text_is_forbidden_control (0x2028));
  g_assert_false (bs_text_is_forbidden_control (0x1f4da));
}

static void
test_blank (void)
{
  static const char *const blank[] = {
    "",
    " \t\r\n\f\v",
    "\xc2\xa0",         /* U+00A0 NO-BREAK SPACE */
    "\xe2\x80\xaf",     /* U+202F NARROW NO-BREAK SPACE */
    "\xe3\x80\x80",     /* U+3000 IDEOGRAPHIC SPACE */
    "\xe2\x80\xa8",     /* U+2028 LINE SEPARATOR */
    "\xe2\x80\x8b",     /* U+200B ZERO WIDTH SPACE */
    "\xe2\x80\x8d",     /* U+200D ZERO WIDTH JOINER */
    "\xef\xbb\xbf",     /* U+FEFF BOM */
    "\xe2\x81\xa0",     /* U+2060 WORD JOINER */
    "\xc2\xad",         /* U+00AD SOFT HYPHEN */
    "\xe2\x80\x8e",     /* U+200E LEFT-TO-RIGHT MARK */
    "\xf3\xa0\x80\x81", /* U+E0001 LANGUAGE TAG */
    " \xc2\xa0\xe2\x80\x8b\t\xef\xbb\xbf ",
  };
  static const char *const not_blank[] = {
    "a",
    ".",
    "\xe2\x80\x8b\x61", /* U+200B then "a" */
    "a\xc2\xa0",
    "\xcc\x81",         /* a lone combining accent */
    "\xf0\x9f\x93\x9a", /* U+1F4DA */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (blank); i++)
    if (!bs_text_is_blank (blank[i]))
      bs_test_fail ("blank case %" G_GSIZE_FORMAT " not blank", i);
  for (gsize i = 0; i < G_N_ELEMENTS (not_blank); i++)
    if (bs_text_is_blank (not_blank[i]))
      bs_test_fail ("case %" G_GSIZE_FORMAT " blank", i);
}

static void
check_trim (const char *text, const char *expected)
{
  g_autofree char *trimmed = bs_text_trim (text);

  g_assert_cmpstr (trimmed, ==, expected);
}

static void
test_trim (void)
{
  check_trim ("", "");
  check_trim ("Dune", "Dune");
  check_trim ("  \t Dune Messiah \n ", "Dune Messiah");
  check_trim ("\v\fDune\r", "Dune");
  check_trim ("\xc2\xa0\xe3\x80\x80"
              "Dune\xe2\x80\x83\xe2\x80\xa9",
              "Dune");
  check_trim ("a\xc2\xa0"
              "b",
              "a\xc2\xa0"
              "b"); /* inside: kept */
  /* format characters are invisible but not whitespace: kept */
  check_trim ("\xe2\x80\x8b"
              "Dune\xef\xbb\xbf",
              "\xe2\x80\x8b"
              "Dune\xef\xbb\xbf");
  /* C1 NEL is not whitespace here: it stays, and is refused */
  check_trim ("\xc2\x85"
              "Dune",
              "\xc2\x85"
              "Dune");
  check_trim (" \xc2\xa0 ", "");
}

static void
check_refused (const char *text, gboolean allow_blank, const char *needle)
{
  g_autoptr (GError) error = NULL;
  char *out = (char *) "untouched";

  if (bs_text_check ("title", text, allow_blank, 10, &out, &error))
    {
      bs_test_fail ("\"%s\" accepted", text);
      g_free (out);
      return;
    }
  g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
  if (error != NULL
      && (strstr (error->message, "title") == NULL || strstr (error->message, needle) == NULL))
    bs_test_fail ("message \"%s\" lacks title or \"%s\"", error->message, needle);
}

static void
check_accepted (const char *text, gboolean allow_blank, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;

  if (!bs_text_check ("title", text, allow_blank, 10, &out, &error))
    bs_test_fail ("refused: %s", error->message);
  else
    g_assert_cmpstr (out, ==, expected);
}

static void
test_check (void)
{
  check_accepted (" Dune ", FALSE, "Dune");
  check_accepted ("a\tb\nc\r", FALSE, "a\tb\nc");
  check_accepted ("\xc2\xa0", TRUE, "");
  check_accepted ("\xe2\x80\x8b", TRUE, "\xe2\x80\x8b");
  check_accepted ("\xe2\x80\x8b"
                  "a",
                  FALSE,
                  "\xe2\x80\x8b"
                  "a");
  check_accepted ("0123456789", FALSE, "0123456789");
  check_accepted (
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", FALSE,
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");

  check_refused ("a\x7f"
                 "b",
                 FALSE, "control");
  check_refused ("a\xc2\x80"
                 "b",
                 FALSE, "U+0080");
  check_refused ("a\xc2\x85"
                 "b",
                 FALSE, "U+0085");
  check_refused ("\xc2\x9b"
                 "31m",
                 FALSE, "U+009B");
  check_refused ("ab\xc2\x9f", FALSE, "control");
  check_refused ("a\x01"
                 "b",
                 TRUE, "U+0001");
  check_refused ("a\x1b[31m", TRUE, "control");
  check_refused ("a\x0b"
                 "b",
                 TRUE, "control"); /* VT inside: trimmed only at the ends */
  check_refused ("", FALSE, "blank");
  check_refused ("\xc2\xa0\xe2\x80\x8b\xef\xbb\xbf\xe2\x81\xa0", FALSE, "blank");
  check_refused ("01234567890", FALSE, "at most 10");
  check_refused ("ab\xff", TRUE, "UTF-8");
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/text/forbidden-controls", test_forbidden_controls);
  g_test_add_func ("/bs/text/blank", test_blank);
  g_test_add_func ("/bs/text/trim", test_trim);
  g_test_add_func ("/bs/text/check", test_check);
  return g_test_run ();
}
