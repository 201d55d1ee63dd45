/* test-money.c: bs_money_parse, bs_money_from_json, bs_money_format,
 * bs_money_parse_stored. */
#include "bs-error.h"
#include "bs-json.h"

#include <string.h>
#include "bs-money.h"
#include "bs-test.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <math.h>

/* Accepts @text as @expected cents, reporting the input on failure. */
static void
check_parse_ok (const char *text, gint64 expected)
{
  g_autoptr (GError) error = NULL;
  gint64 cents = -1;

  if (!bs_money_parse (text, &cents, &error))
    bs_test_fail ("bs_money_parse (\"%s\") failed: %s", text, error->message);
  else if (cents != expected)
    bs_test_fail ("bs_money_parse (\"%s\") = %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
                  text, cents, expected);
}

/* Rejects @text with BS_ERROR_VALIDATION. @text may be NULL. */
static void
check_parse_rejected (const char *text)
{
  g_autoptr (GError) error = NULL;
  gint64 cents = -1;

  if (bs_money_parse (text, &cents, &error))
    bs_test_fail ("bs_money_parse (\"%s\") accepted it as %" G_GINT64_FORMAT " cents",
                  text != NULL ? text : "(null)", cents);
  else if (!g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
    bs_test_fail ("bs_money_parse (\"%s\"): expected BS_ERROR_VALIDATION, got %s",
                  text != NULL ? text : "(null)", error != NULL ? error->message : "no error");
  else if (error->message == NULL || *error->message == '\0')
    bs_test_fail ("bs_money_parse (\"%s\"): empty error message", text != NULL ? text : "(null)");
}

static void
test_parse_valid (void)
{
  static const struct
  {
    const char *text;
    gint64 cents;
  } cases[] = {
    { "0", 0 },
    { "0.0", 0 },
    { "0.00", 0 },
    { "00", 0 },
    { "0.5", 50 },
    { "0.50", 50 },
    { "0.05", 5 },
    { "0.01", 1 },
    { "0.99", 99 },
    { "15.99", 1599 },
    { "7", 700 },
    { "7.0", 700 },
    { "007.10", 710 },
    { "10", 1000 },
    { "100", 10000 },
    { "10000000", 1000000000 },
    { "12345678.9", 1234567890 },
    { "99999999", 9999999900 },
    { "99999999.99", 9999999999 },
    /* digits after the second decimal may be zeros: the value is whole cents */
    { "1.000", 100 },
    { "1.500", 150 },
    { "15.990", 1599 },
    { "0.000", 0 },
    { "0.10000000000000000000", 10 },
    { "99999999.9900000000000000000000", 9999999999 },
    /* negative zero is zero, in every spelling */
    { "-0", 0 },
    { "-0.0", 0 },
    { "-0.00", 0 },
    { "-000.000", 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_parse_ok (cases[i].text, cases[i].cents);
}

/* Leading zeros must not count towards the eight integer digits. */
static void
test_parse_leading_zeros (void)
{
  check_parse_ok ("0000000001", 100);
  check_parse_ok ("00000000.01", 1);
  check_parse_ok ("012345678", 1234567800);
  check_parse_ok ("099999999.99", BS_MONEY_MAX_CENTS);
  check_parse_ok ("00099999999.99", BS_MONEY_MAX_CENTS);
  check_parse_rejected ("0100000000");
  check_parse_rejected ("000100000000.00");
}

static void
test_parse_invalid (void)
{
  static const char *const cases[] = {
    "1.999",
    "0.001",
    "1.001",
    "1.0000000000000000000001",
    "0.10000000000000000001",
    "99999999.999",
    "-0.01",
    "-0.001",
    "-1",
    "-0.",
    "-.0",
    "--0",
    "-",
    "1e3",
    "1E3",
    "1e-2",
    " 1",
    "1 ",
    "\t1",
    "1\n",
    "",
    ".5",
    ".",
    "5.",
    "1.2.3",
    "1..2",
    "abc",
    "1a",
    "0x10",
    "+1",
    "100000000",
    "100000000.00",
    "999999999999999999999999",
    "99999999999999999999999999999999999999.99",
    "1,00",
    "7.",
    "-7.",
    "1,000.00",
    "\xd9\xa1\xd9\xa2", /* ١٢ ARABIC-INDIC DIGITS */
    "\xef\xbc\x91",     /* １ FULLWIDTH DIGIT ONE */
    "1\xc2\xa0",        /* trailing NO-BREAK SPACE */
    "NaN",
    "inf",
    "Infinity",
    "0.5 ",
    "1_000",
    "$1",
    "1.5\xff",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_parse_rejected (cases[i]);
  check_parse_rejected (NULL);
}

/* A failure is reported by the return value and the error; error may be NULL. */
static void
test_parse_error (void)
{
  g_autoptr (GError) error = NULL;
  gint64 cents = 42;

  g_assert_false (bs_money_parse ("1.999", &cents, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_VALIDATION);
  g_assert_nonnull (error->message);
  g_assert_false (bs_money_parse ("abc", &cents, NULL));
  g_assert_false (bs_money_parse (NULL, &cents, NULL));
}

/* -------- from_json -------- */

static JsonNode *
node_string (const char *s)
{
  JsonNode *node = json_node_new (JSON_NODE_VALUE);

  json_node_set_string (node, s);
  return node;
}

static JsonNode *
node_int (gint64 v)
{
  JsonNode *node = json_node_new (JSON_NODE_VALUE);

  json_node_set_int (node, v);
  return node;
}

static JsonNode *
node_double (double v)
{
  JsonNode *node = json_node_new (JSON_NODE_VALUE);

  json_node_set_double (node, v);
  return node;
}

static void
check_json_ok (JsonNode *node, const char *what, gint64 expected)
{
  g_autoptr (GError) error = NULL;
  gint64 cents = -1;

  if (!bs_money_from_json (node, &cents, &error))
    bs_test_fail ("bs_money_from_json (%s) failed: %s", what, error->message);
  else if (cents != expected)
    bs_test_fail ("bs_money_from_json (%s) = %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
                  what, cents, expected);
}

static void
check_json_rejected (JsonNode *node, const char *what)
{
  g_autoptr (GError) error = NULL;
  gint64 cents = -1;

  if (bs_money_from_json (node, &cents, &error))
    bs_test_fail ("bs_money_from_json (%s) accepted it as %" G_GINT64_FORMAT " cents", what, cents);
  else if (!g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
    bs_test_fail ("bs_money_from_json (%s): expected BS_ERROR_VALIDATION, got %s", what,
                  error != NULL ? error->message : "no error");
}

static void
test_from_json_string (void)
{
  g_autoptr (JsonNode) a = node_string ("12.99");
  g_autoptr (JsonNode) b = node_string ("7");
  g_autoptr (JsonNode) c = node_string ("1.999");
  g_autoptr (JsonNode) d = node_string ("");
  g_autoptr (JsonNode) e = node_string (" 1");
  g_autoptr (JsonNode) f = node_string ("-1");

  check_json_ok (a, "\"12.99\"", 1299);
  check_json_ok (b, "\"7\"", 700);
  check_json_rejected (c, "\"1.999\"");
  check_json_rejected (d, "\"\"");
  check_json_rejected (e, "\" 1\"");
  check_json_rejected (f, "\"-1\"");
}

static void
test_from_json_int (void)
{
  g_autoptr (JsonNode) a = node_int (18);
  g_autoptr (JsonNode) b = node_int (0);
  g_autoptr (JsonNode) c = node_int (99999999);
  g_autoptr (JsonNode) d = node_int (100000000);
  g_autoptr (JsonNode) e = node_int (-1);
  g_autoptr (JsonNode) f = node_int (G_MAXINT64);
  g_autoptr (JsonNode) g = node_int (G_MININT64);
  g_autoptr (JsonNode) h = node_int (G_MAXINT64 / 100 + 1);

  check_json_ok (a, "18", 1800);
  check_json_ok (b, "0", 0);
  check_json_ok (c, "99999999", 9999999900);
  check_json_rejected (d, "100000000");
  check_json_rejected (e, "-1");
  check_json_rejected (f, "G_MAXINT64");
  check_json_rejected (g, "G_MININT64");
  check_json_rejected (h, "G_MAXINT64/100+1");
}

static void
test_from_json_double (void)
{
  static const struct
  {
    double v;
    const char *what;
    gint64 cents; /* -1: rejected */
  } cases[] = {
    { 18.99, "18.99", 1899 },
    { 0.1, "0.1", 10 },
    { 0.29, "0.29", 29 },
    { 0.57, "0.57", 57 },
    { 1.15, "1.15", 115 },
    { 4.35, "4.35", 435 },
    { 1e3, "1e3", 100000 },
    { 1e7, "1e7", 1000000000 },
    { 0.0, "0.0", 0 },
    { 99999999.99, "99999999.99", 9999999999 },
    { 1.999, "1.999", -1 },
    { 0.001, "0.001", -1 },
    { 1e-5, "1e-5", -1 },
    { -1.0, "-1.0", -1 },
    { -0.01, "-0.01", -1 },
    { 1e8, "1e8", -1 },
    { 100000000.5, "100000000.5", -1 },
    { 1e15, "1e15", -1 },
    { 1e16, "1e16", -1 },
    { 1e300, "1e300", -1 },
    { -1e300, "-1e300", -1 },
    /* read through the shortest decimal that reads back as the double */
    { 0.1 + 0.2, "0.1 + 0.2 (0.30000000000000004)", -1 },
    { 1.0 / 3.0, "1/3", -1 },
    { 0.07 * 100.0, "0.07 * 100 (7.000000000000001)", -1 },
    { -0.0, "-0.0", 0 },
    { 1.5, "1.5", 150 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (JsonNode) node = node_double (cases[i].v);
      if (cases[i].cents >= 0)
        check_json_ok (node, cases[i].what, cases[i].cents);
      else
        check_json_rejected (node, cases[i].what);
    }
}

static void
test_from_json_non_finite (void)
{
  g_autoptr (JsonNode) inf = node_double (INFINITY);
  g_autoptr (JsonNode) ninf = node_double (-INFINITY);
  g_autoptr (JsonNode) nan = node_double (NAN);

  check_json_rejected (inf, "+inf");
  check_json_rejected (ninf, "-inf");
  check_json_rejected (nan, "nan");
}

static void
test_from_json_wrong_types (void)
{
  g_autoptr (JsonNode) null_node = json_node_new (JSON_NODE_NULL);
  g_autoptr (JsonNode) bool_node = json_node_new (JSON_NODE_VALUE);
  g_autoptr (JsonArray) array = json_array_new ();
  g_autoptr (JsonObject) object = json_object_new ();
  g_autoptr (JsonNode) array_node = json_node_init_array (json_node_alloc (), array);
  g_autoptr (JsonNode) object_node = json_node_init_object (json_node_alloc (), object);

  json_node_set_boolean (bool_node, TRUE);
  check_json_rejected (null_node, "null");
  check_json_rejected (NULL, "NULL node");
  check_json_rejected (bool_node, "true");
  check_json_rejected (array_node, "[]");
  check_json_rejected (object_node, "{}");
}

/* The numbers as json-glib reads them from request text. */
static void
test_from_json_literals (void)
{
  static const struct
  {
    const char *json;
    gint64 cents; /* -1: rejected */
  } cases[] = {
    { "18.99", 1899 },
    { "18", 1800 },
    { "\"18.99\"", 1899 },
    { "0.1", 10 },
    { "1e3", 100000 },
    { "1E3", 100000 },
    { "1.50", 150 },
    { "1.999", -1 },
    { "-1", -1 },
    { "-0.5", -1 },
    { "1e300", -1 },
    { "1e400", -1 },
    { "100000000", -1 },
    { "9223372036854775807", -1 },
    /* Integers outside gint64: json-glib 1.6 reads them with strtoull and
     * no range check, so "-18446744073709551516" (= -(2^64 - 100)) comes
     * out as +100 and "-99999999999999999999" as +1. */
    { "9223372036854775808", -1 },
    { "18446744073709551716", -1 },
    { "99999999999999999999", -1 },
    { "-18446744073709551516", -1 },
    { "-99999999999999999999", -1 },
    /* one rule with strings: whole cents, negative zero is zero */
    { "1.500", 150 },
    { "1.000", 100 },
    { "0.10000000000000000000", 10 },
    { "-0", 0 },
    { "-0.0", 0 },
    { "-0.00", 0 },
    { "-0e0", 0 },
    { "0.10000000000000000001", -1 },
    { "1.0000000000000000001", -1 },
    { "0.30000000000000004", -1 },
    { "2.675", -1 },
    { "1e-400", -1 },
    { "1.5e1", 1500 },
    { "1234e-2", 1234 },
    { "9.999999999e7", 9999999999 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) parse_error = NULL;
      g_autofree char *body = g_strdup_printf ("{\"price\":%s}", cases[i].json);
      /* through the request parser, as a real body would go */
      g_autoptr (JsonObject) object = bs_json_parse_object (body, strlen (body), &parse_error);
      JsonNode *node = object != NULL ? json_object_get_member (object, "price") : NULL;
      g_autofree char *what = g_strdup_printf ("literal %s", cases[i].json);

      if (node == NULL)
        {
          /* the parser refusing the literal is as good as money refusing it */
          if (cases[i].cents >= 0)
            bs_test_fail ("could not parse %s: %s", cases[i].json, parse_error->message);
          continue;
        }
      if (cases[i].cents >= 0)
        check_json_ok (node, what, cases[i].cents);
      else
        check_json_rejected (node, what);
    }
}

/* A JSON number and a JSON string holding the same plain decimal get the
 * same answer: the same cents, or both refused. */
static void
check_same_rule (const char *literal)
{
  g_autofree char *as_number = g_strdup_printf ("{\"price\":%s}", literal);
  g_autofree char *as_string = g_strdup_printf ("{\"price\":\"%s\"}", literal);
  g_autoptr (JsonObject) number = bs_json_parse_object (as_number, strlen (as_number), NULL);
  g_autoptr (JsonObject) string = bs_json_parse_object (as_string, strlen (as_string), NULL);
  gint64 number_cents = -1, string_cents = -1;
  gboolean number_ok, string_ok;

  g_assert_nonnull (string);
  number_ok = number != NULL
              && bs_money_from_json (json_object_get_member (number, "price"), &number_cents, NULL);
  string_ok = string != NULL
              && bs_money_from_json (json_object_get_member (string, "price"), &string_cents, NULL);
  if (number_ok != string_ok || number_cents != string_cents)
    bs_test_fail ("%s: as a number %s %" G_GINT64_FORMAT ", as a string %s %" G_GINT64_FORMAT,
                  literal, number_ok ? "accepted" : "refused", number_cents,
                  string_ok ? "accepted" : "refused", string_cents);
}

static void
test_same_rule_random (void)
{
  GRand *rand = g_rand_new_with_seed (1500);

  for (int i = 0; i < 40000; i++)
    {
      GString *literal = g_string_new (NULL);
      int n_int = g_rand_int_range (rand, 1, 11);
      int n_frac = g_rand_int_range (rand, 0, 24);

      if (g_rand_int_range (rand, 0, 10) == 0)
        g_string_append_c (literal, '-');
      /* JSON numbers have no leading zeros */
      g_string_append_c (literal, (char) ('0' + g_rand_int_range (rand, n_int > 1 ? 1 : 0, 10)));
      for (int k = 1; k < n_int; k++)
        g_string_append_c (literal, (char) ('0' + g_rand_int_range (rand, 0, 10)));
      if (n_frac > 0)
        g_string_append_c (literal, '.');
      for (int k = 0; k < n_frac; k++)
        /* mostly zeros after two decimals, so that many are whole cents */
        g_string_append_c (literal, (char) ('0'
                                            + (k >= 2 && g_rand_int_range (rand, 0, 4) != 0
                                                   ? 0
                                                   : g_rand_int_range (rand, 0, 10))));
      check_same_rule (literal->str);
      g_string_free (literal, TRUE);
    }
  g_rand_free (rand);
}

/* "anything within NUMERIC(10,2) round-trips exactly" through a JSON double */
static void
test_from_json_double_round_trip (void)
{
  GRand *rand = g_rand_new_with_seed (20240601);
  guint n_bad = 0;

  for (gint64 i = 0; i < 120000; i++)
    {
      gint64 cents;
      gint64 got = -1;
      g_autoptr (JsonNode) node = NULL;

      if (i < 20000)
        cents = i;
      else if (i < 40000)
        cents = BS_MONEY_MAX_CENTS - (i - 20000);
      else
        cents = (gint64) (g_rand_double (rand) * (double) BS_MONEY_MAX_CENTS);

      node = node_double ((double) cents / 100.0);
      if (!bs_money_from_json (node, &got, NULL) || got != cents)
        {
          if (n_bad++ < 5)
            bs_test_fail ("%" G_GINT64_FORMAT
                          " cents as a double %.17g read back as %" G_GINT64_FORMAT,
                          cents, (double) cents / 100.0, got);
        }
    }
  g_rand_free (rand);
  g_assert_cmpuint (n_bad, ==, 0);
}

/* -------- format -------- */

static void
check_format (gint64 cents, const char *expected)
{
  g_autofree char *text = bs_money_format (cents);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_format (void)
{
  check_format (0, "0.00");
  check_format (1, "0.01");
  check_format (5, "0.05");
  check_format (10, "0.10");
  check_format (30, "0.30");
  check_format (99, "0.99");
  check_format (100, "1.00");
  check_format (700, "7.00");
  check_format (1599, "15.99");
  check_format (9999999999, "99999999.99");
  check_format (-1, "-0.01");
  check_format (-150, "-1.50");
  check_format (-9999999999, "-99999999.99");
}

static void
test_format_extremes (void)
{
  check_format (G_MAXINT64, "92233720368547758.07");
  check_format (G_MININT64, "-92233720368547758.08");
  check_format (G_MININT64 + 1, "-92233720368547758.07");
}

static void
test_round_trip (void)
{
  GRand *rand = g_rand_new_with_seed (42);

  for (gint64 i = 0; i < 60000; i++)
    {
      gint64 cents;
      gint64 back = -1;
      g_autoptr (GError) error = NULL;
      g_autofree char *text = NULL;

      if (i < 20000)
        cents = i;
      else if (i < 30000)
        cents = BS_MONEY_MAX_CENTS - (i - 20000);
      else
        cents = (gint64) (g_rand_double (rand) * (double) (BS_MONEY_MAX_CENTS + 1));

      text = bs_money_format (cents);
      if (!bs_money_parse (text, &back, &error))
        {
          bs_test_fail ("parse (format (%" G_GINT64_FORMAT ")) = parse (\"%s\") failed: %s", cents,
                        text, error->message);
          break;
        }
      if (back != cents)
        {
          bs_test_fail ("parse (format (%" G_GINT64_FORMAT ")) = %" G_GINT64_FORMAT, cents, back);
          break;
        }
    }
  g_rand_free (rand);

  /* Just above the maximum, the formatted text is rejected. */
  {
    g_autofree char *text = bs_money_format (BS_MONEY_MAX_CENTS + 1);
    check_parse_rejected (text);
  }
}

/* -------- parse_stored: NUMERIC(p,2) text from PostgreSQL -------- */

static void
check_stored_ok (const char *text, gint64 expected)
{
  gint64 cents = -1;

  if (!bs_money_parse_stored (text, &cents))
    bs_test_fail ("bs_money_parse_stored (\"%s\") failed", text);
  else if (cents != expected)
    bs_test_fail ("bs_money_parse_stored (\"%s\") = %" G_GINT64_FORMAT
                  ", expected %" G_GINT64_FORMAT,
                  text, cents, expected);
}

static void
check_stored_rejected (const char *text)
{
  g_autofree char *escaped = g_strescape (text, NULL);
  gint64 cents = 42;

  if (bs_money_parse_stored (text, &cents))
    bs_test_fail ("bs_money_parse_stored (\"%s\") accepted it as %" G_GINT64_FORMAT " cents",
                  escaped, cents);
}

static void
test_parse_stored_valid (void)
{
  check_stored_ok ("25.98", 2598);
  check_stored_ok ("0.30", 30);
  check_stored_ok ("0.00", 0);
  check_stored_ok ("0.01", 1);
  check_stored_ok ("12.99", 1299);
  check_stored_ok ("199900.00", 19990000);
  check_stored_ok ("99999999.99", BS_MONEY_MAX_CENTS);
  check_stored_ok ("-0.30", -30);
  check_stored_ok ("-0.01", -1);
  check_stored_ok ("-25.98", -2598);
  check_stored_ok ("7", 700);
  check_stored_ok ("7.5", 750);
  check_stored_ok ("0", 0);
  check_stored_ok ("-7", -700);
  /* 16 integer digits: what NUMERIC(18,2) holds */
  check_stored_ok ("1234567890123456", G_GINT64_CONSTANT (123456789012345600));
  check_stored_ok ("9999999999999999.99", G_GINT64_CONSTANT (999999999999999999));
  check_stored_ok ("-9999999999999999.99", -G_GINT64_CONSTANT (999999999999999999));
  check_stored_ok ("999999999900.00", G_GINT64_CONSTANT (99999999990000));
}

static void
test_parse_stored_invalid (void)
{
  static const char *const cases[] = {
    "",
    "-",
    "abc",
    "1.2.3",
    "1e5",
    "1E5",
    " 1",
    "1 ",
    "\t1",
    "1\n",
    "+1",
    "--1",
    "-.5",
    ".5",
    ".",
    "1.234",
    "0.001",
    "1,00",
    "7.",
    "-7.",
    "1.a",
    "a1",
    "0x10",
    "NaN",
    "Infinity",
    "12345678901234567",
    "12345678901234567.00",
    "-12345678901234567",
    "99999999999999999999999999",
    "1.5\xff",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_stored_rejected (cases[i]);
}

/* Whatever bs_money_format writes within 16 integer digits reads back. */
static void
test_parse_stored_round_trip (void)
{
  GRand *rand = g_rand_new_with_seed (2598);
  const gint64 max = G_GINT64_CONSTANT (999999999999999999);

  for (gint64 i = 0; i < 40000; i++)
    {
      gint64 cents;
      gint64 back = 42;
      g_autofree char *text = NULL;

      if (i < 10000)
        cents = i - 5000;
      else if (i < 12000)
        cents = max - (i - 10000);
      else if (i < 14000)
        cents = -max + (i - 12000);
      else
        cents = (gint64) ((g_rand_double (rand) * 2.0 - 1.0) * (double) max);

      text = bs_money_format (cents);
      if (!bs_money_parse_stored (text, &back) || back != cents)
        {
          bs_test_fail ("parse_stored (format (%" G_GINT64_FORMAT ") = \"%s\") = %" G_GINT64_FORMAT,
                        cents, text, back);
          break;
        }
    }
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  g_test_add_func ("/bs/money/parse/valid", test_parse_valid);
  g_test_add_func ("/bs/money/parse/leading-zeros", test_parse_leading_zeros);
  g_test_add_func ("/bs/money/parse/invalid", test_parse_invalid);
  g_test_add_func ("/bs/money/parse/error", test_parse_error);
  g_test_add_func ("/bs/money/from-json/string", test_from_json_string);
  g_test_add_func ("/bs/money/from-json/int", test_from_json_int);
  g_test_add_func ("/bs/money/from-json/double", test_from_json_double);
  g_test_add_func ("/bs/money/from-json/non-finite", test_from_json_non_finite);
  g_test_add_func ("/bs/money/from-json/wrong-types", test_from_json_wrong_types);
  g_test_add_func ("/bs/money/from-json/literals", test_from_json_literals);
  g_test_add_func ("/bs/money/from-json/double-round-trip", test_from_json_double_round_trip);
  g_test_add_func ("/bs/money/from-json/same-rule-as-strings", test_same_rule_random);
  g_test_add_func ("/bs/money/format/values", test_format);
  g_test_add_func ("/bs/money/format/extremes", test_format_extremes);
  g_test_add_func ("/bs/money/round-trip", test_round_trip);
  g_test_add_func ("/bs/money/parse-stored/valid", test_parse_stored_valid);
  g_test_add_func ("/bs/money/parse-stored/invalid", test_parse_stored_invalid);
  g_test_add_func ("/bs/money/parse-stored/round-trip", test_parse_stored_round_trip);

  return g_test_run ();
}
