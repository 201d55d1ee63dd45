/* bs-money.c: decimal text <-> integer cents. */
#include "bs-money.h"

#include "bs-error.h"

#include <string.h>

gboolean
bs_money_parse (const char *text, gint64 *out_cents, GError **error)
{
  const char *p = text;
  gint64 units = 0;
  gint64 cents = 0;
  guint int_digits = 0;
  guint frac_digits = 0;
  gboolean seen_digit = FALSE;

  g_return_val_if_fail (out_cents != NULL, FALSE);

  if (text == NULL || *text == '\0')
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION, "price must not be empty");
      return FALSE;
    }
  if (*p == '-')
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION, "price must not be negative");
      return FALSE;
    }
  for (; g_ascii_isdigit (*p); p++)
    {
      seen_digit = TRUE;
      if (units == 0 && *p == '0')
        continue; /* leading zeros do not count towards the range */
      if (++int_digits > 8)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "price must be at most %s",
                       "99999999.99");
          return FALSE;
        }
      units = units * 10 + (*p - '0');
    }
  if (!seen_digit)
    goto bad_format;
  if (*p == '.')
    {
      p++;
      for (; g_ascii_isdigit (*p); p++)
        {
          if (++frac_digits > 2)
            {
              g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                                   "price must have at most two decimal places");
              return FALSE;
            }
          cents = cents * 10 + (*p - '0');
        }
      if (frac_digits == 0)
        goto bad_format;
      if (frac_digits == 1)
        cents *= 10;
    }
  if (*p != '\0')
    goto bad_format;

  *out_cents = units * 100 + cents;
  return TRUE;

bad_format:
  g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                       "price must be a decimal number such as \"15.99\"");
  return FALSE;
}

gboolean
bs_money_from_json (JsonNode *node, gint64 *out_cents, GError **error)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

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
          gint64 v = json_node_get_int (node);
          if (v < 0)
            return bs_money_parse ("-", out_cents, error);
          if (v > BS_MONEY_MAX_CENTS / 100)
            return bs_money_parse ("999999999", out_cents, error);
          *out_cents = v * 100;
          return TRUE;
        }
      case G_TYPE_DOUBLE:
        {
          double v = json_node_get_double (node);
          /* 15 significant digits survive decimal → double → decimal exactly. */
          g_ascii_formatd (buf, sizeof buf, "%.15g", v);
          if (strchr (buf, 'e') != NULL)
            {
              if (v < 0)
                return bs_money_parse ("-", out_cents, error);
              if (v > 1)
                return bs_money_parse ("999999999", out_cents, error);
              g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                                   "price must have at most two decimal places");
              return FALSE;
            }
          return bs_money_parse (buf, out_cents, error);
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
