/* bs-money.c: decimal text <-> integer cents. */
#include "bs-money.h"

#include "bs-decimal.h"
#include "bs-error.h"

#include <math.h>
#include <string.h>

/* One rule for every spelling of a price, applied to its exact value: at
 * most BS_MONEY_MAX_CENTS, a whole number of cents (digits after the second
 * decimal may only be zeros: "1.500" is 1.50, "1.505" is refused), not
 * negative; negative zero is zero. */
static gboolean
decimal_to_cents (const BsDecimal *dec, gint64 *out_cents, GError **error)
{
  gint64 cents = 0;

  if (dec->n_digits == 0)
    {
      *out_cents = 0; /* "-0", "-0.00", -0.0: zero */
      return TRUE;
    }
  if (dec->negative)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION, "price must not be negative");
      return FALSE;
    }
  /* digits before the point: n_digits + exponent */
  if ((gint64) dec->n_digits + dec->exponent > 8)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "price must be at most %s", "99999999.99");
      return FALSE;
    }
  if (dec->exponent < -2)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                           "price must have at most two decimal places");
      return FALSE;
    }
  /* now n_digits <= 10 and the value is digits × 10^(exponent + 2) cents */
  for (guint i = 0; i < dec->n_digits; i++)
    cents = cents * 10 + (dec->digits[i] - '0');
  for (gint64 i = 0; i < dec->exponent + 2; i++)
    cents *= 10;
  *out_cents = cents;
  return TRUE;
}

static gboolean
bad_format (GError **error)
{
  g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                       "price must be a decimal number such as \"15.99\"");
  return FALSE;
}

gboolean
bs_money_parse (const char *text, gint64 *out_cents, GError **error)
{
  BsDecimal dec;

  g_return_val_if_fail (out_cents != NULL, FALSE);

  if (text == NULL || *text == '\0')
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION, "price must not be empty");
      return FALSE;
    }
  if (!bs_decimal_parse (text, -1, FALSE, &dec))
    return bad_format (error);
  return decimal_to_cents (&dec, out_cents, error);
}

/* A JSON number arrives as json-glib's int64 or double, its text gone.
 * bs_json_parse_object refuses any number whose double would not give back
 * the exact value written (bs_decimal_is_exact_double), so the shortest
 * decimal form of the double is the client's number, and the rule above
 * applies to it exactly as to a string: 0.1 is 10 cents, 1.500 is 150,
 * 0.10000000000000000001 never gets here, 2.675 is refused. */
gboolean
bs_money_from_json (JsonNode *node, gint64 *out_cents, GError **error)
{
  BsDecimal dec;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION, "price must not be null");
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node))
    goto wrong_type;

  switch (json_node_get_value_type (node))
    {
      case G_TYPE_STRING:
        return bs_money_parse (json_node_get_string (node), out_cents, error);
      case G_TYPE_INT64:
        {
          char text[32];

          g_snprintf (text, sizeof text, "%" G_GINT64_FORMAT, json_node_get_int (node));
          if (!bs_decimal_parse (text, -1, FALSE, &dec))
            g_return_val_if_reached (FALSE);
          return decimal_to_cents (&dec, out_cents, error);
        }
      case G_TYPE_DOUBLE:
        {
          double v = json_node_get_double (node);

          if (!isfinite (v))
            return bad_format (error); /* not from JSON text */
          bs_decimal_from_double (v, &dec);
          return decimal_to_cents (&dec, out_cents, error);
        }
      default:
        break;
    }

wrong_type:
  g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION, "price must be a string or a number");
  return FALSE;
}

gboolean
bs_money_parse_stored (const char *text, gint64 *out_cents)
{
  const char *p = text;
  gboolean negative = FALSE;
  gint64 units = 0;
  int int_digits = 0;
  int frac[2] = { 0, 0 };

  g_return_val_if_fail (text != NULL && out_cents != NULL, FALSE);

  if (*p == '-')
    {
      negative = TRUE;
      p++;
    }
  for (; g_ascii_isdigit (*p); p++)
    {
      if (++int_digits > 16)
        return FALSE;
      units = units * 10 + (*p - '0');
    }
  if (int_digits == 0)
    return FALSE;
  if (*p == '.')
    {
      p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      for (int i = 0; i < 2 && g_ascii_isdigit (*p); i++, p++)
        frac[i] = *p - '0';
    }
  if (*p != '\0')
    return FALSE;
  *out_cents = (units * 100 + frac[0] * 10 + frac[1]) * (negative ? -1 : 1);
  return TRUE;
}

char *
bs_money_format (gint64 cents)
{
  guint64 magnitude = cents < 0 ? (guint64) (-(cents + 1)) + 1 : (guint64) cents;

  return g_strdup_printf ("%s%" G_GUINT64_FORMAT ".%02u", cents < 0 ? "-" : "", magnitude / 100,
                          (guint) (magnitude % 100));
}
