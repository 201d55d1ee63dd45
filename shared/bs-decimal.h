/* bs-decimal.h: exact decimal numbers as text, for money and for checking
 * that json-glib's doubles keep the value a client wrote. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Significant digits kept; more are counted in n_digits but not stored. */
#define BS_DECIMAL_DIGITS 24

/* The value (-1)^negative × digits × 10^exponent, normalised: digits has no
 * leading or trailing zeros, so two equal values have equal fields (zero
 * has n_digits 0 and exponent 0, whatever its sign). */
typedef struct
{
  gboolean negative;
  guint n_digits;                     /* significant digits, all of them */
  char digits[BS_DECIMAL_DIGITS + 1]; /* the first of them, NUL-terminated */
  gint64 exponent;
} BsDecimal;

/* Parse [-]digits[.digits] and, with @allow_exponent, [(e|E)[+|-]digits]:
 * the JSON number grammar, except that leading zeros are allowed. The whole
 * of @text (@len bytes, or -1 when NUL-terminated) must match. Exponents are
 * clamped at ±10^15, far beyond any double. */
gboolean bs_decimal_parse (const char *text, gssize len, gboolean allow_exponent, BsDecimal *out);

/* The shortest decimal that reads back as @value (finite): what a reader of
 * the number sees, e.g. 0.1 for the double nearest 0.1. */
void bs_decimal_from_double (double value, BsDecimal *out);

/* TRUE when @a and @b are the same value (zero equals negative zero). */
gboolean bs_decimal_equal (const BsDecimal *a, const BsDecimal *b);

/* TRUE when @value (g_ascii_strtod of the text @dec was parsed from) keeps
 * @dec exactly: bs_decimal_from_double (@value) equals @dec. Cheaper than
 * computing that: at most two conversions. FALSE for infinities. */
gboolean bs_decimal_is_exact_double (const BsDecimal *dec, double value);

G_END_DECLS
