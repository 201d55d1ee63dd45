/* bs-text.c: the rule for client text (see the header). */
#include "bs-text.h"

#include "bs-error.h"

#include <string.h>

gboolean
bs_text_is_space (gunichar c)
{
  return g_unichar_isspace (c) || c == '\v';
}

gboolean
bs_text_is_forbidden_control (gunichar c)
{
  if (c < 0x20)
    return c != '\t' && c != '\n' && c != '\r';
  return c >= 0x7f && c <= 0x9f;
}

gboolean
bs_text_is_blank (const char *text)
{
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (!bs_text_is_space (c) && g_unichar_type (c) != G_UNICODE_FORMAT)
        return FALSE;
    }
  return TRUE;
}

char *
bs_text_trim (const char *text)
{
  const char *start = text;
  const char *end = text + strlen (text);

  while (*start != '\0' && bs_text_is_space (g_utf8_get_char (start)))
    start = g_utf8_next_char (start);
  while (end > start)
    {
      const char *prev = g_utf8_prev_char (end);

      if (!bs_text_is_space (g_utf8_get_char (prev)))
        break;
      end = prev;
    }
  return g_strndup (start, end - start);
}

gboolean
bs_text_check (const char *field, const char *text, gboolean allow_blank, guint max_chars,
               char **out, GError **error)
{
  g_autofree char *value = NULL;
  glong n_chars = 0;

  if (!g_utf8_validate (text, -1, NULL))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be valid UTF-8", field);
      return FALSE;
    }
  value = bs_text_trim (text);
  for (const char *p = value; *p != '\0'; p = g_utf8_next_char (p), n_chars++)
    if (bs_text_is_forbidden_control (g_utf8_get_char (p)))
      {
        g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                     "%s must not contain control characters (U+%04X)", field, g_utf8_get_char (p));
        return FALSE;
      }
  if (!allow_blank && bs_text_is_blank (value))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                   "%s must not be blank (whitespace or invisible characters only)", field);
      return FALSE;
    }
  if (n_chars > (glong) max_chars)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be at most %u characters", field,
                   max_chars);
      return FALSE;
    }
  *out = g_steal_pointer (&value);
  return TRUE;
}
