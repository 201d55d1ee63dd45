/* test-http-guard.c: request framing as the guard sees it, whole and split
 * byte by byte (the verdict must not depend on how reads split the bytes). */
#include "bs-error.h"
#include "bs-http-guard.h"
#include "bs-test.h"

#include <string.h>

typedef struct
{
  const char *name;
  const char *bytes;
  int code; /* -1: accepted */
  guint requests_read;
} GuardCase;

#define OK -1

static const GuardCase cases[] = {
  { "get", "GET /v1/books/1 HTTP/1.1\r\nHost: x\r\n\r\n", OK, 1 },
  { "http10-no-host", "GET / HTTP/1.0\r\n\r\n", OK, 1 },
  { "pipelined", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", OK, 2 },
  { "post-length", "POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", OK, 1 },
  { "chunked",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2;ext=1\r\n{}\r\n0\r\nT: "
    "1\r\n\r\n",
    OK, 1 },
  { "blank-lines-before", "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", OK, 1 },
  { "query", "GET /v1/books?page=2&q=caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n", OK, 1 },
  { "ctl-in-value", "GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\x01 b\r\n\r\n", OK, 1 },
  { "two-lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "length-list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 41, 41\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "length-plus", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +41\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "length-and-chunked",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "space-before-colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "te-foo", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", BS_ERROR_BAD_REQUEST,
    0 },
  { "te-gzip-chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "chunk-zz", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "chunk-minus", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "chunk-18-digits",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "chunk-no-crlf", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "two-hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "no-host", "GET / HTTP/1.1\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "two-idempotency-keys",
    "POST / HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\r\nidempotency-key: b\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 0 },
  { "expect-200", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n",
    BS_ERROR_EXPECTATION_FAILED, 0 },
  { "nul-in-header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "http2", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", BS_ERROR_HTTP_VERSION, 0 },
  { "http-garbage", "GET / HTTQ/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "bare-lf", "GET / HTTP/1.1\nHost: x\n\n", BS_ERROR_BAD_REQUEST, 0 },
  { "obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "method-not-token", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "absolute-form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "nul-escape", "GET /v1/books/1%00 HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "bad-escape", "GET /1%zz HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "lone-percent", "GET /% HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "not-utf8", "GET /nope%ff HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "raw-high-byte", "GET /nope\xff HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "encoded-slash", "GET /v1/books%2F1 HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "dot-dot", "GET /v1/books/../books/1 HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "dot", "GET /v1/books/./1 HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "encoded-dots", "GET /v1/%2e%2E/x HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "trailing-dots", "GET /v1/.. HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "fragment", "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "double-space", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", BS_ERROR_BAD_REQUEST, 0 },
  { "good-then-bad",
    "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
    BS_ERROR_BAD_REQUEST, 1 },
};

static void
check (const GuardCase *c, gsize len, gsize step)
{
  g_autoptr (BsHttpGuard) guard = bs_http_guard_new ();
  g_autofree guint8 *copy = g_memdup2 (c->bytes, len);

  for (gsize at = 0; at < len && !bs_http_guard_failed (guard); at += step)
    bs_http_guard_scan (guard, copy + at, MIN (step, len - at));
  if ((c->code == OK) == bs_http_guard_failed (guard))
    bs_test_fail ("%s (step %" G_GSIZE_FORMAT "): %s", c->name, step,
                  bs_http_guard_failed (guard) ? bs_http_guard_get_error_message (guard)
                                               : "accepted");
  else if (c->code != OK && bs_http_guard_get_error_code (guard) != c->code)
    bs_test_fail ("%s: code %d, expected %d (%s)", c->name, bs_http_guard_get_error_code (guard),
                  c->code, bs_http_guard_get_error_message (guard));
  if (bs_http_guard_get_requests_read (guard) != c->requests_read)
    bs_test_fail ("%s: %" G_GUINT64_FORMAT " requests read, expected %u", c->name,
                  bs_http_guard_get_requests_read (guard), c->requests_read);
}

static void
test_cases (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize len = strlen (cases[i].bytes);
      /* the NUL case holds a NUL: take its whole length */
      if (g_str_equal (cases[i].name, "nul-in-header"))
        len = sizeof "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n" - 1;
      check (&cases[i], len, len);
      check (&cases[i], len, 1);
      check (&cases[i], len, 7);
    }
}

/* Empty lines before a request are not handed on; everything else is. */
static void
test_output (void)
{
  g_autoptr (BsHttpGuard) guard = bs_http_guard_new ();
  char bytes[] = "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
  gsize kept = bs_http_guard_scan (guard, (guint8 *) bytes, sizeof bytes - 1);

  g_assert_cmpuint (kept, ==, sizeof bytes - 3);
  g_assert_cmpmem (bytes, kept, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", kept);
  g_assert_true (bs_http_guard_is_idle (guard));
}

static void
test_limits (void)
{
  struct
  {
    const char *name;
    GString *text;
    int code;
  } big[3];

  big[0].name = "long-url";
  big[0].text = g_string_new ("GET /");
  for (int i = 0; i < 9000; i++)
    g_string_append_c (big[0].text, 'a');
  g_string_append (big[0].text, " HTTP/1.1\r\nHost: x\r\n\r\n");
  big[0].code = BS_ERROR_URI_TOO_LONG;

  big[1].name = "long-header";
  big[1].text = g_string_new ("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
  for (int i = 0; i < 9000; i++)
    g_string_append_c (big[1].text, 'a');
  g_string_append (big[1].text, "\r\n\r\n");
  big[1].code = BS_ERROR_HEADERS_TOO_LARGE;

  big[2].name = "many-headers";
  big[2].text = g_string_new ("GET / HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 101; i++)
    g_string_append_printf (big[2].text, "X-%d: 1\r\n", i);
  g_string_append (big[2].text, "\r\n");
  big[2].code = BS_ERROR_HEADERS_TOO_LARGE;

  for (gsize i = 0; i < G_N_ELEMENTS (big); i++)
    {
      GuardCase c = { big[i].name, big[i].text->str, big[i].code, 0 };
      check (&c, big[i].text->len, big[i].text->len);
      check (&c, big[i].text->len, 3);
      g_string_free (big[i].text, TRUE);
    }
}

static void
test_chunk_limit (void)
{
  GString *text = g_string_new ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  GuardCase c = { "many-chunks", NULL, BS_ERROR_PAYLOAD_TOO_LARGE, 0 };

  for (int i = 0; i < BS_HTTP_GUARD_MAX_CHUNKS + 1; i++)
    g_string_append (text, "1\r\na\r\n");
  g_string_append (text, "0\r\n\r\n");
  c.bytes = text->str;
  check (&c, text->len, text->len);
  g_string_free (text, TRUE);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/http-guard/cases", test_cases);
  g_test_add_func ("/bs/http-guard/output", test_output);
  g_test_add_func ("/bs/http-guard/limits", test_limits);
  g_test_add_func ("/bs/http-guard/chunk-limit", test_chunk_limit);
  return g_test_run ();
}
