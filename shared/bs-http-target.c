/* bs-http-target.c: the request target rules of bs-http-target.h. */
#include "bs-http-target.h"

#include "bs-http-guard.h"

#include <string.h>

static gboolean
reject (const char **message, const char *text)
{
  *message = text;
  return FALSE;
}

static gboolean
is_dot_segment (const char *segment, gsize len)
{
  return (len == 1 && segment[0] == '.') || (len == 2 && segment[0] == '.' && segment[1] == '.');
}

/* Decode @len bytes of a path or query into @out; FALSE on a bad escape, an
 * encoded NUL, or (in a path) an encoded slash or a dot segment. */
static gboolean
decode_part (const char *part, gsize len, gboolean is_path, char *out, gsize *out_len,
             const char **message)
{
  gsize n = 0;
  gsize segment_start = 0;

  for (gsize i = 0; i < len; i++)
    {
      char c = part[i];
      if (c == '%')
        {
          if (i + 2 >= len)
            return reject (message, "malformed percent-escape in the request target");
          if (!g_ascii_isxdigit (part[i + 1]) || !g_ascii_isxdigit (part[i + 2]))
            return reject (message, "malformed percent-escape in the request target");
          c = (char) (g_ascii_xdigit_value (part[i + 1]) * 16 + g_ascii_xdigit_value (part[i + 2]));
          i += 2;
          if (c == '\0')
            return reject (message, "the request target holds an encoded NUL");
          if (is_path && c == '/')
            return reject (message, "the request path holds an encoded \"/\"");
        }
      else if (is_path && c == '/')
        {
          if (is_dot_segment (out + segment_start, n - segment_start))
            return reject (message, "the request path holds a \".\" or \"..\" segment");
          segment_start = n + 1;
        }
      out[n++] = c;
    }
  if (is_path && is_dot_segment (out + segment_start, n - segment_start))
    return reject (message, "the request path holds a \".\" or \"..\" segment");
  *out_len = n;
  return TRUE;
}

gboolean
bs_http_target_check (const char *target, gsize len, const char **message)
{
  char decoded[BS_HTTP_GUARD_MAX_REQUEST_LINE];
  const char *query;
  gsize path_len, decoded_len = 0;

  if (len == 0 || len > sizeof decoded)
    return reject (message, "malformed request target");
  if (target[0] != '/')
    return reject (message, len == 1 && target[0] == '*'
                                ? "\"*\" is not a resource here"
                                : "the request target must be a path starting with \"/\"");
  if (memchr (target, '#', len) != NULL)
    return reject (message, "the request target must not hold a fragment");
  query = memchr (target, '?', len);
  path_len = query != NULL ? (gsize) (query - target) : len;
  if (!decode_part (target, path_len, TRUE, decoded, &decoded_len, message))
    return FALSE;
  if (!g_utf8_validate_len (decoded, decoded_len, NULL))
    return reject (message, "the request path is not UTF-8 once decoded");
  if (query == NULL)
    return TRUE;
  if (!decode_part (query + 1, len - path_len - 1, FALSE, decoded, &decoded_len, message))
    return FALSE;
  if (!g_utf8_validate_len (decoded, decoded_len, NULL))
    return reject (message, "the query string is not UTF-8 once decoded");
  return TRUE;
}
