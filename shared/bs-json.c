/* bs-json.c: request-body JSON with bounded depth and strict member types. */
#include "bs-json.h"

#include "bs-decimal.h"
#include "bs-error.h"
#include "bs-text.h"

#include <math.h>
#include <string.h>

/* Valid JSON that no request field can hold: a validation error, not a
 * malformed body. Compared by address. */
static const char integer_out_of_range[] = "integer out of range (beyond 64 bits)";
static const char number_out_of_range[] = "number out of range";
static const char number_inexact[] = "number with more precision than can be kept exactly";

/* A strict RFC 8259 checker that runs before json-glib, because json-glib
 * 1.6 recurses without bound, accepts comments, single quotes, leading zeros
 * and several top-level values (leaking all but the first), and wraps integer
 * literals outside 64 bits. Recursion here is bounded by BS_JSON_MAX_DEPTH. */
typedef struct
{
  const char *p;
  const char *end;
  const char *problem; /* static text: what is wrong */
  const char *number;  /* the literal, for the number problems above */
  gsize number_len;
  const char *member; /* the raw name of the current top-level member */
  gsize member_len;
} Scanner;

static gboolean scan_value (Scanner *sc, guint depth);

static void
skip_ws (Scanner *sc)
{
  while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
    sc->p++;
}

static gboolean
fail (Scanner *sc, const char *problem)
{
  if (sc->problem == NULL)
    sc->problem = problem;
  return FALSE;
}

static int
hex4 (const char *p)
{
  int v = 0;

  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (p[i]);
      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
  return v;
}

static gboolean
scan_string (Scanner *sc)
{
  sc->p++; /* opening quote */
  while (sc->p < sc->end)
    {
      unsigned char c = (unsigned char) *sc->p;
      if (c == '"')
        {
          sc->p++;
          return TRUE;
        }
      if (c < 0x20)
        return fail (sc, "control character in a string (escape it)");
      if (c != '\\')
        {
          sc->p++;
          continue;
        }
      if (sc->end - sc->p < 2)
        break;
      switch (sc->p[1])
        {
          case '"':
          case '\\':
          case '/':
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
            sc->p += 2;
            break;
          case 'u':
            {
              int cp = sc->end - sc->p >= 6 ? hex4 (sc->p + 2) : -1;
              if (cp < 0)
                return fail (sc, "bad \\u escape");
              if (cp == 0)
                return fail (sc, "\\u0000 is not allowed in strings");
              sc->p += 6;
              if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail (sc, "unpaired UTF-16 surrogate");
              if (cp >= 0xD800 && cp <= 0xDBFF)
                {
                  int lo = sc->end - sc->p >= 6 && sc->p[0] == '\\' && sc->p[1] == 'u'
                               ? hex4 (sc->p + 2)
                               : -1;
                  if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail (sc, "unpaired UTF-16 surrogate");
                  sc->p += 6;
                }
            }
            break;
          default:
            return fail (sc, "bad escape in a string");
        }
    }
  return fail (sc, "unterminated string");
}

static gboolean
scan_digits (Scanner *sc)
{
  const char *start = sc->p;

  while (sc->p < sc->end && g_ascii_isdigit (*sc->p))
    sc->p++;
  return sc->p > start;
}

/* json-glib 1.6 keeps no number's text: integers become gint64 (wrapping
 * those beyond 64 bits) and other numbers g_ascii_strtod's double. So the
 * literal is checked here, where its text is at hand: an integer must fit in
 * 64 bits, and any other number must come back exactly from its double,
 * i.e. be the shortest decimal that reads back as that double (the form
 * bs_money_from_json reads). That refuses 0.10000000000000000001 (its
 * double reads back as 0.1) and 1e-400 (0), and loses nothing a request can
 * hold: an amount in cents within NUMERIC(10,2) has at most 10 digits. */
static gboolean
check_number (Scanner *sc, const char *start, gboolean integer)
{
  gsize len = sc->p - start;
  g_autofree char *text = g_strndup (start, len);
  BsDecimal dec;
  gint64 value;
  double d;

  sc->number = start;
  sc->number_len = len;
  if (integer)
    {
      if (!g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &value, NULL))
        return fail (sc, integer_out_of_range);
      return TRUE;
    }
  d = g_ascii_strtod (text, NULL);
  if (!isfinite (d))
    return fail (sc, number_out_of_range);
  if (!bs_decimal_parse (text, len, TRUE, &dec) || !bs_decimal_is_exact_double (&dec, d))
    return fail (sc, number_inexact);
  return TRUE;
}

static gboolean
scan_number (Scanner *sc)
{
  const char *start = sc->p;
  gboolean integer = TRUE;

  if (*sc->p == '-')
    sc->p++;
  if (sc->p < sc->end && *sc->p == '0')
    {
      sc->p++;
      if (sc->p < sc->end && g_ascii_isdigit (*sc->p))
        return fail (sc, "numbers must not have leading zeros");
    }
  else if (!scan_digits (sc))
    return fail (sc, "bad number");
  if (sc->p < sc->end && *sc->p == '.')
    {
      sc->p++;
      integer = FALSE;
      if (!scan_digits (sc))
        return fail (sc, "bad number");
    }
  if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E'))
    {
      sc->p++;
      integer = FALSE;
      if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
        sc->p++;
      if (!scan_digits (sc))
        return fail (sc, "bad number");
    }
  return check_number (sc, start, integer);
}

static gboolean
scan_literal (Scanner *sc, const char *word)
{
  gsize len = strlen (word);

  if ((gsize) (sc->end - sc->p) < len || memcmp (sc->p, word, len) != 0)
    return fail (sc, "unexpected character");
  sc->p += len;
  return TRUE;
}

static gboolean
scan_container (Scanner *sc, guint depth, char close)
{
  gboolean object = close == '}';

  if (depth >= BS_JSON_MAX_DEPTH)
    return fail (sc, "nested too deeply");
  sc->p++;
  skip_ws (sc);
  if (sc->p < sc->end && *sc->p == close)
    {
      sc->p++;
      return TRUE;
    }
  for (;;)
    {
      if (object)
        {
          if (sc->p >= sc->end || *sc->p != '"')
            return fail (sc, "expected a member name in double quotes");
          const char *name = sc->p + 1;
          if (!scan_string (sc))
            return FALSE;
          if (depth == 0)
            {
              sc->member = name;
              sc->member_len = sc->p - 1 - name;
            }
          skip_ws (sc);
          if (sc->p >= sc->end || *sc->p != ':')
            return fail (sc, "expected ':' after a member name");
          sc->p++;
        }
      if (!scan_value (sc, depth + 1))
        return FALSE;
      skip_ws (sc);
      if (sc->p < sc->end && *sc->p == ',')
        {
          sc->p++;
          skip_ws (sc);
          continue;
        }
      if (sc->p < sc->end && *sc->p == close)
        {
          sc->p++;
          return TRUE;
        }
      return fail (sc, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static gboolean
scan_value (Scanner *sc, guint depth)
{
  skip_ws (sc);
  if (sc->p >= sc->end)
    return fail (sc, "unexpected end of input");
  switch (*sc->p)
    {
      case '{':
        return scan_container (sc, depth, '}');
      case '[':
        return scan_container (sc, depth, ']');
      case '"':
        return scan_string (sc);
      case 't':
        return scan_literal (sc, "true");
      case 'f':
        return scan_literal (sc, "false");
      case 'n':
        return scan_literal (sc, "null");
      default:
        if (*sc->p == '-' || g_ascii_isdigit (*sc->p))
          return scan_number (sc);
        return fail (sc, "unexpected character");
    }
}

static gboolean
scan_document (Scanner *sc)
{
  if (!scan_value (sc, 0))
    return FALSE;
  skip_ws (sc);
  if (sc->p == sc->end)
    return TRUE;
  return fail (sc, "unexpected data after the JSON value");
}

/* TRUE when @data is exactly one valid JSON value; else *@problem says why
 * and *@offset where. */
gboolean
bs_json_validate (const char *data, gsize len, const char **problem, gsize *offset)
{
  Scanner sc = { data, data + len, NULL };

  if (scan_document (&sc))
    return TRUE;
  *problem = sc.problem;
  *offset = (gsize) (sc.p - data);
  return FALSE;
}

/* At most @max bytes of @text, cut at a character boundary, "…" if cut. */
static char *
excerpt (const char *text, gsize len, gsize max)
{
  gsize cut = len;

  if (len <= max)
    return g_strndup (text, len);
  cut = max;
  while (cut > 0 && ((guchar) text[cut] & 0xc0) == 0x80)
    cut--;
  return g_strdup_printf ("%.*s\xe2\x80\xa6", (int) cut, text); /* U+2026 */
}

static void
set_scan_error (const Scanner *sc, const char *data, GError **error)
{
  g_autofree char *number = NULL;
  g_autofree char *member = NULL;
  const char *why;

  if (sc->problem == integer_out_of_range)
    why = "is out of range (integers must fit in 64 bits)";
  else if (sc->problem == number_out_of_range)
    why = "is out of range";
  else if (sc->problem == number_inexact)
    why = "has more precision than can be kept exactly";
  else
    {
      g_set_error (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                   "malformed JSON at byte %" G_GSIZE_FORMAT ": %s", (gsize) (sc->p - data),
                   sc->problem);
      return;
    }
  /* valid JSON, a value no field can hold: the message says so, not "malformed" */
  number = excerpt (sc->number, sc->number_len, 40);
  member = sc->member != NULL ? excerpt (sc->member, sc->member_len, 64) : NULL;
  g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s%sthe number %s %s",
               member != NULL ? member : "", member != NULL ? ": " : "", number, why);
}

JsonObject *
bs_json_parse_object (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) parse_error = NULL;
  JsonNode *root;
  Scanner sc = { 0 };

  if (data == NULL || len == 0)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                           "request body is empty; expected a JSON object");
      return NULL;
    }
  if (!g_utf8_validate_len (data, len, NULL))
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                           "request body is not valid UTF-8");
      return NULL;
    }
  sc.p = data;
  sc.end = data + len;
  if (!scan_document (&sc))
    {
      set_scan_error (&sc, data, error);
      return NULL;
    }

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize) len, &parse_error))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_MALFORMED_JSON, "malformed JSON: %s",
                   parse_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                           "request body holds no JSON value");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                           "request body must be a JSON object");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

gboolean
bs_json_check_members (JsonObject *object, const char *const *allowed, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    {
      if (!g_strv_contains (allowed, l->data))
        {
          g_autofree char *list = g_strjoinv (", ", (char **) allowed);
          g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                       "unknown field \"%s\"; allowed fields are: %s", (const char *) l->data,
                       list);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
bs_json_get_string (JsonObject *object, const char *member, gboolean allow_blank, guint max_chars,
                    char **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);

  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be a string", member);
      return FALSE;
    }
  return bs_text_check (member, json_node_get_string (node), allow_blank, max_chars, out, error);
}

gboolean
bs_json_get_int (JsonObject *object, const char *member, gint64 min, gint64 max, gboolean *present,
                 gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  gint64 value;

  *present = node != NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be an integer", member);
      return FALSE;
    }
  value = json_node_get_int (node);
  if (value < min || value > max)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                   "%s must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT, member, min,
                   max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

char *
bs_json_to_string (JsonNode *node, gsize *length)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();

  g_autofree char *text = NULL;
  gsize len = 0;
  GString *out;

  json_generator_set_root (generator, node);
  text = json_generator_to_data (generator, &len);
  if (memchr (text, 0x1f, len) == NULL)
    {
      if (length != NULL)
        *length = len;
      return g_steal_pointer (&text);
    }
  /* json-glib 1.6 escapes 0x01..0x1e but writes 0x1f raw, which is invalid
   * JSON. Structural characters are never control characters, so every 0x1f
   * byte is inside a string and can be escaped in place. */
  out = g_string_sized_new (len + 16);
  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == 0x1f)
        g_string_append (out, "\\u001f");
      else
        g_string_append_c (out, text[i]);
    }
  if (length != NULL)
    *length = out->len;
  return g_string_free (out, FALSE);
}
