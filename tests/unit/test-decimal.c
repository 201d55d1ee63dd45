/* test-decimal.c: bs_decimal_parse, bs_decimal_from_double,
 * bs_decimal_is_exact_double. */
#include "bs-decimal.h"
#include "bs-test.h"

#include <math.h>
#include <string.h>

static void
check_parse (const char *text, gboolean allow_exponent, gboolean negative, const char *digits,
             gint64 exponent)
{
  BsDecimal dec;

  if (!bs_decimal_parse (text, -1, allow_exponent, &dec))
    {
      bs_test_fail ("\"%s\" refused", text);
      return;
    }
  if (dec.negative != negative || strcmp (dec.digits, digits) != 0
      || dec.n_digits != strlen (digits) || dec.exponent != exponent)
    bs_test_fail ("\"%s\" = %s%s e%" G_GINT64_FORMAT ", expected %s%s e%" G_GINT64_FORMAT, text,
                  dec.negative ? "-" : "", dec.digits, dec.exponent, negative ? "-" : "", digits,
                  exponent);
}

static void
test_parse (void)
{
  check_parse ("0", FALSE, FALSE, "", 0);
  check_parse ("-0.000", FALSE, TRUE, "", 0);
  check_parse ("000.000e99", TRUE, FALSE, "", 0);
  check_parse ("15.99", FALSE, FALSE, "1599", -2);
  check_parse ("0015.990", FALSE, FALSE, "1599", -2);
  check_parse ("1500", FALSE, FALSE, "15", 2);
  check_parse ("1.500", FALSE, FALSE, "15", -1);
  check_parse ("0.10000000000000000001", FALSE, FALSE, "10000000000000000001", -20);
  check_parse ("-0.01", FALSE, TRUE, "1", -2);
  check_parse ("1e3", TRUE, FALSE, "1", 3);
  check_parse ("1.5E+1", TRUE, FALSE, "15", 0);
  check_parse ("1234e-2", TRUE, FALSE, "1234", -2);
  check_parse ("1e99999999999999999999", TRUE, FALSE, "1", G_GINT64_CONSTANT (1000000000000000));
  check_parse ("1e-99999999999999999999", TRUE, FALSE, "1", -G_GINT64_CONSTANT (1000000000000000));
}

static void
test_parse_invalid (void)
{
  static const char *const no_exponent[] = { "",   "-",   "+1",  ".5",  "5.",  "1e3", "1.2.3", " 1",
                                             "1 ", "0x1", "1,0", "--1", "NaN", "inf", "1a" };
  static const char *const with_exponent[] = { "1e", "1e+", "e5", "1.e5", "1e5.0", "1ee5" };
  BsDecimal dec;

  for (gsize i = 0; i < G_N_ELEMENTS (no_exponent); i++)
    if (bs_decimal_parse (no_exponent[i], -1, FALSE, &dec))
      bs_test_fail ("\"%s\" accepted", no_exponent[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (with_exponent); i++)
    if (bs_decimal_parse (with_exponent[i], -1, TRUE, &dec))
      bs_test_fail ("\"%s\" accepted", with_exponent[i]);
  /* @len bounds the text */
  g_assert_true (bs_decimal_parse ("12x", 2, FALSE, &dec));
  g_assert_cmpstr (dec.digits, ==, "12");
}

static void
check_from_double (double value, const char *digits, gint64 exponent)
{
  BsDecimal dec;

  bs_decimal_from_double (value, &dec);
  if (strcmp (dec.digits, digits) != 0 || dec.exponent != exponent)
    bs_test_fail ("%.17g = %s e%" G_GINT64_FORMAT ", expected %s e%" G_GINT64_FORMAT, value,
                  dec.digits, dec.exponent, digits, exponent);
}

static void
test_from_double (void)
{
  check_from_double (0.1, "1", -1);
  check_from_double (0.1 + 0.2, "30000000000000004", -17);
  check_from_double (2.675, "2675", -3);
  check_from_double (99999999.99, "9999999999", -2);
  check_from_double (1e300, "1", 300);
  check_from_double (5e-324, "5", -324);
  check_from_double (0.0, "", 0);
  check_from_double (-0.0, "", 0);
}

/* The literal's double keeps it exactly iff its shortest form is the literal. */
static void
check_exact (const char *literal, gboolean expected)
{
  BsDecimal dec, shortest;
  double value = g_ascii_strtod (literal, NULL);

  g_assert_true (bs_decimal_parse (literal, -1, TRUE, &dec));
  if (bs_decimal_is_exact_double (&dec, value) != expected)
    bs_test_fail ("%s: exact should be %d", literal, expected);
  if (isfinite (value))
    {
      bs_decimal_from_double (value, &shortest);
      if (bs_decimal_equal (&dec, &shortest) != expected)
        bs_test_fail ("%s: from_double disagrees", literal);
    }
}

static void
test_exact (void)
{
  check_exact ("0.1", TRUE);
  check_exact ("0.10", TRUE);
  check_exact ("0.10000000000000000000", TRUE);
  check_exact ("1.500", TRUE);
  check_exact ("2.675", TRUE);
  check_exact ("-0.0", TRUE);
  check_exact ("0e5", TRUE);
  check_exact ("1e300", TRUE);
  check_exact ("0.30000000000000004", TRUE);
  check_exact ("99999999.99", TRUE);
  check_exact ("0.10000000000000000001", FALSE);
  check_exact ("0.1000000000000000055511151231257827", FALSE);
  check_exact ("0.10000000000000001", FALSE); /* reads back as 0.1 */
  check_exact ("0.30000000000000001", FALSE); /* reads back as 0.3 */
  check_exact ("1e-400", FALSE);
  check_exact ("1e400", FALSE);
  check_exact ("123456789012345678", FALSE);
}

/* Random literals: is_exact_double agrees with computing the shortest form. */
static void
test_exact_random (void)
{
  GRand *rand = g_rand_new_with_seed (1599);

  for (int i = 0; i < 50000; i++)
    {
      char text[64];
      int n = g_rand_int_range (rand, 1, 20);
      int point = g_rand_int_range (rand, 0, n);
      gsize len = 0;
      BsDecimal dec, shortest;
      double value;

      for (int k = 0; k < n; k++)
        {
          if (k == point && k > 0)
            text[len++] = '.';
          text[len++] = (char) ('0'
                                + (k == 0 ? g_rand_int_range (rand, 1, 10)
                                          : g_rand_int_range (rand, 0, 10)));
        }
      len += g_snprintf (text + len, sizeof text - len, "e%d", g_rand_int_range (rand, -30, 30));
      value = g_ascii_strtod (text, NULL);
      g_assert_true (bs_decimal_parse (text, len, TRUE, &dec));
      bs_decimal_from_double (value, &shortest);
      if (bs_decimal_is_exact_double (&dec, value) != bs_decimal_equal (&dec, &shortest))
        {
          bs_test_fail ("%s: is_exact_double disagrees with the shortest form", text);
          break;
        }
    }
  g_rand_free (rand);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/decimal/parse/valid", test_parse);
  g_test_add_func ("/bs/decimal/parse/invalid", test_parse_invalid);
  g_test_add_func ("/bs/decimal/from-double", test_from_double);
  g_test_add_func ("/bs/decimal/exact", test_exact);
  g_test_add_func ("/bs/decimal/exact-random", test_exact_random);
  return g_test_run ();
}
