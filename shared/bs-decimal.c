/* bs-decimal.c: exact decimal numbers as text (see the header). */
#include "bs-decimal.h"

#include <math.h>
#include <string.h>

#define EXPONENT_CLAMP G_GINT64_CONSTANT (1000000000000000)

typedef struct
{
  BsDecimal *out;
  guint pending_zeros; /* zeros after the last non-zero digit so far */
  gint64 n_fraction;   /* digits after the point */
} Digits;

static void
add_digit (Digits *d, char c)
{
  BsDecimal *out = d->out;

  if (c == '0')
    {
      if (out->n_digits > 0)
        d->pending_zeros++;
      return;
    }
  for (; d->pending_zeros > 0; d->pending_zeros--)
    {
      if (out->n_digits < BS_DECIMAL_DIGITS)
        out->digits[out->n_digits] = '0';
      out->n_digits++;
    }
  if (out->n_digits < BS_DECIMAL_DIGITS)
    out->digits[out->n_digits] = c;
  out->n_digits++;
}

/* Reads digits from *@p (before @end); FALSE when there are none. */
static gboolean
read_digits (const char **p, const char *end, Digits *d, gboolean fraction)
{
  const char *start = *p;

  for (; *p < end && g_ascii_isdigit (**p); (*p)++)
    {
      add_digit (d, **p);
      if (fraction)
        d->n_fraction++;
    }
  return *p > start;
}

static gboolean
read_exponent (const char **p, const char *end, gint64 *exponent)
{
  gboolean negative = FALSE;
  const char *start;

  if (*p < end && (**p == '+' || **p == '-'))
    negative = *(*p)++ == '-';
  start = *p;
  for (; *p < end && g_ascii_isdigit (**p); (*p)++)
    *exponent = MIN (*exponent * 10 + (**p - '0'), EXPONENT_CLAMP);
  if (negative)
    *exponent = -*exponent;
  return *p > start;
}

gboolean
bs_decimal_parse (const char *text, gssize len, gboolean allow_exponent, BsDecimal *out)
{
  const char *p = text;
  const char *end = text + (len < 0 ? strlen (text) : (gsize) len);
  Digits d = { out, 0, 0 };
  gint64 exponent = 0;

  memset (out, 0, sizeof *out);
  if (p < end && *p == '-')
    {
      out->negative = TRUE;
      p++;
    }
  if (!read_digits (&p, end, &d, FALSE))
    return FALSE;
  if (p < end && *p == '.')
    {
      p++;
      if (!read_digits (&p, end, &d, TRUE))
        return FALSE;
    }
  if (allow_exponent && p < end && (*p == 'e' || *p == 'E'))
    {
      p++;
      if (!read_exponent (&p, end, &exponent))
        return FALSE;
    }
  if (p != end)
    return FALSE;
  out->digits[MIN (out->n_digits, BS_DECIMAL_DIGITS)] = '\0';
  /* value = all digits × 10^(exponent - n_fraction); the trailing zeros
   * left out of digits move into the exponent */
  out->exponent = out->n_digits == 0 ? 0 : exponent - d.n_fraction + d.pending_zeros;
  return TRUE;
}

/* @value with @n significant digits, correctly rounded ("%.{n-1}e"). */
static void
format_digits (double value, guint n, char *buf, gsize size)
{
  char format[16];

  /* "%.<n-1>e" */
  g_snprintf (format, sizeof format, "%%.%u%c", n - 1, 'e');
  g_ascii_formatd (buf, size, format, value);
}

void
bs_decimal_from_double (double value, BsDecimal *out)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_return_if_fail (isfinite (value));
  /* 17 significant digits always read back; take the fewest that do */
  for (guint n = 1; n <= 17; n++)
    {
      format_digits (value, n, buf, sizeof buf);
      if (g_ascii_strtod (buf, NULL) == value || n == 17)
        break;
    }
  if (!bs_decimal_parse (buf, -1, TRUE, out))
    g_return_if_reached ();
}

gboolean
bs_decimal_equal (const BsDecimal *a, const BsDecimal *b)
{
  if (a->n_digits == 0 || b->n_digits == 0)
    return a->n_digits == b->n_digits;
  return a->negative == b->negative && a->n_digits == b->n_digits && a->exponent == b->exponent
         && strcmp (a->digits, b->digits) == 0;
}

gboolean
bs_decimal_is_exact_double (const BsDecimal *dec, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  BsDecimal again;

  if (!isfinite (value))
    return FALSE;
  if (dec->n_digits == 0)
    return value == 0;
  if (dec->n_digits > 17 || value == 0)
    return FALSE; /* no double needs more than 17 digits; or underflow */
  /* the nearest decimal of as many digits must be the client's, and none
   * shorter may read back: then it is the shortest form */
  format_digits (value, dec->n_digits, buf, sizeof buf);
  if (!bs_decimal_parse (buf, -1, TRUE, &again) || !bs_decimal_equal (dec, &again))
    return FALSE;
  if (dec->n_digits == 1)
    return TRUE;
  format_digits (value, dec->n_digits - 1, buf, sizeof buf);
  return g_ascii_strtod (buf, NULL) != value;
}
