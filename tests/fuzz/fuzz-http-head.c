/* fuzz-http-head.c: libFuzzer target for what a client sends first: the
 * bytes of a connection through bs-http-guard, as the server reads them.
 * Checks that the verdict and the bytes handed on do not depend on how the
 * reads split the input, and that every request head the guard lets through
 * is one libsoup parses as valid, with one unambiguous body length. */
#include "bs-http-guard.h"

#include <libsoup/soup.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gsize
scan_in_steps (const uint8_t *data, size_t size, gsize step, guint8 *out, gboolean *failed)
{
  g_autoptr (BsHttpGuard) guard = bs_http_guard_new ();
  gsize kept = 0;

  for (gsize at = 0; at < size && !bs_http_guard_failed (guard); at += step)
    {
      gsize n = MIN (step, size - at);
      memcpy (out + kept, data + at, n);
      kept += bs_http_guard_scan (guard, out + kept, n);
    }
  *failed = bs_http_guard_failed (guard);
  return kept;
}

/* The first complete head in @out must be one libsoup accepts. */
static void
check_with_libsoup (const guint8 *out, gsize len)
{
  const guint8 *end = NULL;
  g_autoptr (SoupMessageHeaders) headers = NULL;
  g_autofree char *method = NULL;
  g_autofree char *path = NULL;
  SoupHTTPVersion version;
  guint status;

  for (gsize i = 3; i < len && end == NULL; i++)
    if (memcmp (out + i - 3, "\r\n\r\n", 4) == 0)
      end = out + i + 1;
  if (end == NULL)
    return;
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  status = soup_headers_parse_request ((const char *) out, (int) (end - out), headers, &method,
                                       &path, &version);
  if (status != SOUP_STATUS_OK)
    __builtin_trap ();
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH)
    {
      const char *length = soup_message_headers_get_list (headers, "Content-Length");
      if (length != NULL && strchr (length, ',') != NULL)
        __builtin_trap ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree guint8 *whole = g_malloc (size + 1);
  g_autofree guint8 *split = g_malloc (size + 1);
  gboolean whole_failed, split_failed;
  gsize step = size > 0 ? (gsize) data[0] % 7 + 1 : 1;
  gsize whole_len = scan_in_steps (data, size, MAX (size, (gsize) 1), whole, &whole_failed);
  gsize split_len = scan_in_steps (data, size, step, split, &split_failed);

  if (whole_failed != split_failed || whole_len != split_len
      || memcmp (whole, split, whole_len) != 0 || whole_len > size)
    __builtin_trap ();
  check_with_libsoup (whole, whole_len);
  return 0;
}
