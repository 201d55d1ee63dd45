/* bs-idempotency-key.c: the Idempotency-Key rule (see the header). */
#include "bs-idempotency-key.h"

#include "bs-error.h"

#include <string.h>

gboolean
bs_idempotency_key_check (const char *key, GError **error)
{
  gsize len;

  if (key == NULL)
    return TRUE;
  len = strlen (key);
  if (len == 0 || len > BS_IDEMPOTENCY_KEY_MAX)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                   "Idempotency-Key must be 1 to %d characters", BS_IDEMPOTENCY_KEY_MAX);
      return FALSE;
    }
  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) key[i];

      if (c < 0x21 || c > 0x7e)
        {
          g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                               "Idempotency-Key must be visible ASCII characters only "
                               "(0x21 to 0x7E: no spaces, control characters or non-ASCII)");
          return FALSE;
        }
    }
  return TRUE;
}
