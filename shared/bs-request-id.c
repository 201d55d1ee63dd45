/* bs-request-id.c: keep a client's request id when it is safe to echo. */
#include "bs-request-id.h"

gboolean
bs_request_id_is_sane (const char *id)
{
  gsize len = 0;

  if (id == NULL || *id == '\0')
    return FALSE;
  for (const char *p = id; *p != '\0'; p++, len++)
    {
      if (len >= BS_REQUEST_ID_MAX_LEN)
        return FALSE;
      /* visible ASCII only; no quotes or backslashes that need escaping */
      if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
        return FALSE;
    }
  return TRUE;
}

char *
bs_request_id_from_header (const char *header)
{
  if (bs_request_id_is_sane (header))
    return g_strdup (header);
  return g_uuid_string_random ();
}
