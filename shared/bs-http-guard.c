/* bs-http-guard.c: RFC 9112 request framing, byte by byte, with our limits.
 * See bs-http-guard.h for why. One state machine; the request target is
 * checked whole (bs-http-target.c). */
#include "bs-http-guard.h"

#include "bs-error.h"
#include "bs-http-target.h"

#include <string.h>

typedef enum
{
  ST_IDLE,    /* between requests */
  ST_IDLE_LF, /* CR of an empty line before a request: LF must follow */
  ST_METHOD,  /* request line */
  ST_TARGET,
  ST_VERSION,
  ST_LINE_LF,    /* CR ending a line of the head or trailers: LF must follow */
  ST_LINE_START, /* a header field, or the empty line ending the head */
  ST_NAME,
  ST_VALUE,
  ST_END_LF,     /* CR of the empty line ending the head: LF must follow */
  ST_BODY,       /* Content-Length body */
  ST_CHUNK_SIZE, /* hex digits */
  ST_CHUNK_EXT,  /* ";name=value" after the size */
  ST_CHUNK_LF,   /* CR after the size line */
  ST_CHUNK_DATA,
  ST_CHUNK_CR, /* CRLF after the data */
  ST_CHUNK_DATA_LF,
  ST_FAILED,
} GuardState;

/* Header fields whose value we read, or that may appear only once. */
typedef enum
{
  FIELD_OTHER,
  FIELD_CONTENT_LENGTH,
  FIELD_TRANSFER_ENCODING,
  FIELD_HOST,
  FIELD_EXPECT,
  FIELD_SINGLE, /* any other field that must not repeat */
} FieldKind;

static const char *const single_fields[]
    = { "content-type", "idempotency-key", "x-request-id", "authorization", NULL };

#define NAME_MAX_KEPT 32
#define VALUE_MAX_KEPT 64
#define METHOD_MAX 32
#define CHUNK_SIZE_DIGITS 15 /* below 2^60: no overflow */

struct _BsHttpGuard
{
  GuardState state;
  GuardState state_after_lf; /* where ST_LINE_LF leads */
  int error_code;
  const char *error_message;
  gboolean failed_before_first_line;

  guint64 begun;
  guint64 read;
  guint blank_lines;

  /* the request being read */
  char method[METHOD_MAX + 1];
  gsize method_len;
  GString *target;
  char version[9];
  gsize version_len;
  gboolean http10;
  gboolean in_trailers;
  gboolean line_handed_on; /* a whole line of this head went to libsoup */
  gsize line_len;
  gsize head_len;
  guint fields;
  char name[NAME_MAX_KEPT + 1];
  gsize name_len;
  FieldKind field;
  char value[VALUE_MAX_KEPT + 1];
  gsize value_len;
  guint seen; /* bit per FieldKind, and SINGLE fields by index from 8 */
  guint hosts;
  gboolean has_length;
  guint64 length;
  gboolean chunked;
  guint64 remaining;
  guint chunk_digits;
  guint chunks;
};

BsHttpGuard *
bs_http_guard_new (void)
{
  BsHttpGuard *guard = g_new0 (BsHttpGuard, 1);

  guard->target = g_string_new (NULL);
  guard->state = ST_IDLE;
  return guard;
}

void
bs_http_guard_free (BsHttpGuard *guard)
{
  if (guard == NULL)
    return;
  g_string_free (guard->target, TRUE);
  g_free (guard);
}

static gboolean
fail (BsHttpGuard *guard, int code, const char *message)
{
  guard->failed_before_first_line = bs_http_guard_head_has_no_line (guard);
  guard->state = ST_FAILED;
  guard->error_code = code;
  guard->error_message = message;
  return FALSE;
}

/* tchar of RFC 9110 §5.6.2 */
static gboolean
is_tchar (guint8 c)
{
  return g_ascii_isalnum (c) || (c != 0 && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
begin_request (BsHttpGuard *guard)
{
  guard->begun++;
  guard->method_len = 0;
  guard->method[0] = '\0';
  g_string_truncate (guard->target, 0);
  guard->version_len = 0;
  guard->in_trailers = FALSE;
  guard->line_handed_on = FALSE;
  guard->line_len = 0;
  guard->head_len = 0;
  guard->fields = 0;
  guard->seen = 0;
  guard->hosts = 0;
  guard->has_length = FALSE;
  guard->length = 0;
  guard->chunked = FALSE;
  guard->chunks = 0;
  guard->state = ST_METHOD;
}

static void
end_request (BsHttpGuard *guard)
{
  guard->read++;
  guard->blank_lines = 0;
  guard->state = ST_IDLE;
}

static gboolean
check_version (BsHttpGuard *guard)
{
  const char *v = guard->version;

  if (guard->version_len == 8 && g_str_equal (v, "HTTP/1.1"))
    guard->http10 = FALSE;
  else if (guard->version_len == 8 && g_str_equal (v, "HTTP/1.0"))
    guard->http10 = TRUE;
  else if (guard->version_len == 8 && g_str_has_prefix (v, "HTTP/") && g_ascii_isdigit (v[5])
           && v[6] == '.' && g_ascii_isdigit (v[7]))
    return fail (guard, BS_ERROR_HTTP_VERSION, "only HTTP/1.0 and HTTP/1.1 are supported");
  else
    return fail (guard, BS_ERROR_BAD_REQUEST, "malformed HTTP version in the request line");
  return TRUE;
}

/* One byte of the request line. */
static gboolean
request_line_byte (BsHttpGuard *guard, guint8 c)
{
  if (++guard->line_len > BS_HTTP_GUARD_MAX_REQUEST_LINE)
    return fail (guard, BS_ERROR_URI_TOO_LONG, "the request line is longer than 8192 bytes");
  switch (guard->state)
    {
      case ST_METHOD:
        if (c == ' ' && guard->method_len > 0)
          {
            guard->state = ST_TARGET;
            return TRUE;
          }
        if (!is_tchar (c))
          return fail (guard, BS_ERROR_BAD_REQUEST, "malformed request line");
        if (guard->method_len == METHOD_MAX)
          return fail (guard, BS_ERROR_BAD_REQUEST, "the method is longer than 32 characters");
        guard->method[guard->method_len++] = (char) c;
        guard->method[guard->method_len] = '\0';
        return TRUE;
      case ST_TARGET:
        if (c == ' ' && guard->target->len > 0)
          {
            const char *message = NULL;
            if (!bs_http_target_check (guard->target->str, guard->target->len, &message))
              return fail (guard, BS_ERROR_BAD_REQUEST, message);
            guard->state = ST_VERSION;
            return TRUE;
          }
        if (c <= 0x20 || c >= 0x7f)
          return fail (guard, BS_ERROR_BAD_REQUEST,
                       "the request target holds a space, a control or a non-ASCII byte");
        g_string_append_c (guard->target, (char) c);
        return TRUE;
      case ST_VERSION:
        if (c == '\r')
          {
            if (!check_version (guard))
              return FALSE;
            guard->state = ST_LINE_LF;
            guard->state_after_lf = ST_LINE_START;
            return TRUE;
          }
        if (guard->version_len == sizeof guard->version - 1 || c < 0x21 || c > 0x7e)
          return fail (guard, BS_ERROR_BAD_REQUEST, "malformed HTTP version in the request line");
        guard->version[guard->version_len++] = (char) c;
        guard->version[guard->version_len] = '\0';
        return TRUE;
      default:
        g_return_val_if_reached (FALSE);
    }
}

static FieldKind
field_kind (BsHttpGuard *guard, guint *single_index)
{
  if (guard->in_trailers || guard->name_len > NAME_MAX_KEPT)
    return FIELD_OTHER;
  if (g_str_equal (guard->name, "content-length"))
    return FIELD_CONTENT_LENGTH;
  if (g_str_equal (guard->name, "transfer-encoding"))
    return FIELD_TRANSFER_ENCODING;
  if (g_str_equal (guard->name, "host"))
    return FIELD_HOST;
  if (g_str_equal (guard->name, "expect"))
    return FIELD_EXPECT;
  for (guint i = 0; single_fields[i] != NULL; i++)
    if (g_str_equal (guard->name, single_fields[i]))
      {
        *single_index = i;
        return FIELD_SINGLE;
      }
  return FIELD_OTHER;
}

/* The value with optional whitespace around it removed, in place. */
static const char *
trimmed_value (BsHttpGuard *guard)
{
  char *v = guard->value;
  gsize len = MIN (guard->value_len, (gsize) VALUE_MAX_KEPT);

  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  v[len] = '\0';
  while (*v == ' ' || *v == '\t')
    v++;
  return v;
}

static gboolean
parse_content_length (BsHttpGuard *guard, const char *value)
{
  gsize n = strlen (value);

  if (n == 0 || n > 18)
    return fail (guard, BS_ERROR_BAD_REQUEST, "Content-Length must be a decimal number");
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isdigit (value[i]))
      return fail (guard, BS_ERROR_BAD_REQUEST, "Content-Length must be a decimal number");
  guard->length = g_ascii_strtoull (value, NULL, 10);
  guard->has_length = TRUE;
  return TRUE;
}

/* A header field line ended: check the fields we care about. */
static gboolean
end_field (BsHttpGuard *guard)
{
  guint single_index = 0;
  FieldKind kind = field_kind (guard, &single_index);
  guint bit = kind == FIELD_SINGLE ? 1u << (8 + single_index) : 1u << kind;
  const char *value;

  if (!guard->in_trailers && ++guard->fields > BS_HTTP_GUARD_MAX_HEADERS)
    return fail (guard, BS_ERROR_HEADERS_TOO_LARGE, "more than 100 header fields");
  if (kind == FIELD_OTHER)
    return TRUE;
  if (kind == FIELD_HOST)
    {
      if (++guard->hosts > 1)
        return fail (guard, BS_ERROR_BAD_REQUEST, "more than one Host header");
      return TRUE;
    }
  if (guard->seen & bit)
    return fail (guard, BS_ERROR_BAD_REQUEST,
                 kind == FIELD_CONTENT_LENGTH ? "more than one Content-Length header"
                 : kind == FIELD_TRANSFER_ENCODING
                     ? "more than one Transfer-Encoding header"
                     : "a header that must appear once appears twice");
  guard->seen |= bit;
  if (guard->value_len > VALUE_MAX_KEPT && kind != FIELD_SINGLE)
    return fail (guard, kind == FIELD_EXPECT ? BS_ERROR_EXPECTATION_FAILED : BS_ERROR_BAD_REQUEST,
                 "header value too long");
  value = trimmed_value (guard);
  switch (kind)
    {
      case FIELD_CONTENT_LENGTH:
        return parse_content_length (guard, value);
      case FIELD_TRANSFER_ENCODING:
        if (g_ascii_strcasecmp (value, "chunked") != 0)
          return fail (guard, BS_ERROR_BAD_REQUEST,
                       "unsupported Transfer-Encoding: only \"chunked\" is accepted");
        guard->chunked = TRUE;
        return TRUE;
      case FIELD_EXPECT:
        if (g_ascii_strcasecmp (value, "100-continue") != 0)
          return fail (guard, BS_ERROR_EXPECTATION_FAILED,
                       "only \"Expect: 100-continue\" is supported");
        return TRUE;
      default:
        return TRUE;
    }
}

/* The empty line after the head (or the trailers) arrived. */
static gboolean
end_head (BsHttpGuard *guard)
{
  if (guard->in_trailers)
    {
      end_request (guard);
      return TRUE;
    }
  if (!guard->http10 && guard->hosts == 0)
    return fail (guard, BS_ERROR_BAD_REQUEST, "HTTP/1.1 requests need a Host header");
  if (guard->chunked && guard->has_length)
    return fail (guard, BS_ERROR_BAD_REQUEST,
                 "Content-Length and Transfer-Encoding must not be sent together");
  if (guard->chunked && guard->http10)
    return fail (guard, BS_ERROR_BAD_REQUEST, "HTTP/1.0 requests cannot be chunked");
  if (guard->chunked)
    {
      guard->chunk_digits = 0;
      guard->remaining = 0;
      guard->state = ST_CHUNK_SIZE;
    }
  else if (guard->length > 0)
    {
      guard->remaining = guard->length;
      guard->state = ST_BODY;
    }
  else
    end_request (guard);
  return TRUE;
}

static gboolean
count_head_byte (BsHttpGuard *guard)
{
  if (++guard->line_len > BS_HTTP_GUARD_MAX_HEADER_LINE)
    return fail (guard, BS_ERROR_HEADERS_TOO_LARGE, "a header line is longer than 8192 bytes");
  if (++guard->head_len > BS_HTTP_GUARD_MAX_HEAD)
    return fail (guard, BS_ERROR_HEADERS_TOO_LARGE, "the request head is larger than 32768 bytes");
  return TRUE;
}

/* One byte of a header (or trailer) field line, or of the empty line. */
static gboolean
field_byte (BsHttpGuard *guard, guint8 c)
{
  if (!count_head_byte (guard))
    return FALSE;
  switch (guard->state)
    {
      case ST_LINE_START:
        if (c == '\r')
          {
            guard->state = ST_END_LF;
            return TRUE;
          }
        if (c == ' ' || c == '\t')
          return fail (guard, BS_ERROR_BAD_REQUEST, "folded header lines are not accepted");
        guard->name_len = 0;
        guard->value_len = 0;
        guard->state = ST_NAME;
        /* fall through */
      case ST_NAME:
        if (c == ':' && guard->name_len > 0)
          {
            guard->name[MIN (guard->name_len, NAME_MAX_KEPT)] = '\0';
            guard->state = ST_VALUE;
            return TRUE;
          }
        if (!is_tchar (c))
          return fail (guard, BS_ERROR_BAD_REQUEST, "malformed header field name");
        if (guard->name_len < NAME_MAX_KEPT)
          guard->name[guard->name_len] = g_ascii_tolower ((char) c);
        guard->name_len++;
        return TRUE;
      case ST_VALUE:
        if (c == '\r')
          {
            guard->state = ST_LINE_LF;
            guard->state_after_lf = ST_LINE_START;
            return end_field (guard);
          }
        /* NUL and bare CR/LF break framing downstream; other controls are
         * left to whoever reads the value (RFC 9110 §5.5 allows either) */
        if (c == '\0')
          return fail (guard, BS_ERROR_BAD_REQUEST, "a header value holds a NUL byte");
        if (guard->value_len < VALUE_MAX_KEPT)
          guard->value[guard->value_len] = (char) c;
        guard->value_len++;
        return TRUE;
      default:
        g_return_val_if_reached (FALSE);
    }
}

static gboolean
chunk_size_byte (BsHttpGuard *guard, guint8 c)
{
  if (++guard->line_len > BS_HTTP_GUARD_MAX_HEADER_LINE)
    return fail (guard, BS_ERROR_BAD_REQUEST, "a chunk size line is longer than 8192 bytes");
  if (guard->state == ST_CHUNK_SIZE && g_ascii_isxdigit (c))
    {
      if (++guard->chunk_digits > CHUNK_SIZE_DIGITS)
        return fail (guard, BS_ERROR_BAD_REQUEST, "chunk size too large");
      guard->remaining = guard->remaining * 16 + (guint64) g_ascii_xdigit_value ((char) c);
      return TRUE;
    }
  if (guard->chunk_digits == 0)
    return fail (guard, BS_ERROR_BAD_REQUEST, "invalid chunk size");
  if (c == '\r')
    {
      guard->state = ST_CHUNK_LF;
      return TRUE;
    }
  if (c == ';' || c == ' ' || c == '\t' || (guard->state == ST_CHUNK_EXT && c > 0x20 && c < 0x7f))
    {
      guard->state = ST_CHUNK_EXT;
      return TRUE;
    }
  return fail (guard, BS_ERROR_BAD_REQUEST, "invalid chunk size");
}

static gboolean
chunk_size_done (BsHttpGuard *guard)
{
  if (guard->remaining == 0)
    {
      /* last chunk: trailers follow, ended by an empty line */
      guard->in_trailers = TRUE;
      guard->head_len = 0;
      guard->line_len = 0;
      guard->state = ST_LINE_START;
      return TRUE;
    }
  if (++guard->chunks > BS_HTTP_GUARD_MAX_CHUNKS)
    return fail (guard, BS_ERROR_PAYLOAD_TOO_LARGE,
                 "the request body is split into more than 4096 chunks");
  guard->state = ST_CHUNK_DATA;
  return TRUE;
}

/* An LF: only valid right after a CR. */
static gboolean
lf_byte (BsHttpGuard *guard, guint8 c)
{
  if (c != '\n')
    return fail (guard, BS_ERROR_BAD_REQUEST, "a CR not followed by LF");
  guard->line_len = 0;
  switch (guard->state)
    {
      case ST_LINE_LF:
        guard->state = guard->state_after_lf;
        return TRUE;
      case ST_END_LF:
        return end_head (guard);
      case ST_CHUNK_LF:
        guard->chunk_digits = 0;
        return chunk_size_done (guard);
      case ST_CHUNK_DATA_LF:
        guard->chunk_digits = 0;
        guard->remaining = 0;
        guard->state = ST_CHUNK_SIZE;
        return TRUE;
      default:
        g_return_val_if_reached (FALSE);
    }
}

/* One byte outside the bodies; FALSE when the guard failed. */
static gboolean
scan_byte (BsHttpGuard *guard, guint8 c, gboolean *drop)
{
  switch (guard->state)
    {
      case ST_IDLE:
        if (c == '\r' || c == '\n')
          {
            if (c == '\n' || ++guard->blank_lines > BS_HTTP_GUARD_MAX_BLANK_LINES)
              return fail (guard, BS_ERROR_BAD_REQUEST, "malformed request line");
            guard->state = ST_IDLE_LF;
            *drop = TRUE;
            return TRUE;
          }
        begin_request (guard);
        return request_line_byte (guard, c);
      case ST_IDLE_LF:
        if (c != '\n')
          return fail (guard, BS_ERROR_BAD_REQUEST, "a CR not followed by LF");
        guard->state = ST_IDLE;
        *drop = TRUE;
        return TRUE;
      case ST_METHOD:
      case ST_TARGET:
      case ST_VERSION:
        if (c == '\n')
          return fail (guard, BS_ERROR_BAD_REQUEST, "lines must end with CRLF");
        return request_line_byte (guard, c);
      case ST_LINE_START:
      case ST_NAME:
      case ST_VALUE:
        if (c == '\n')
          return fail (guard, BS_ERROR_BAD_REQUEST, "lines must end with CRLF");
        return field_byte (guard, c);
      case ST_LINE_LF:
      case ST_END_LF:
      case ST_CHUNK_LF:
      case ST_CHUNK_DATA_LF:
        return lf_byte (guard, c);
      case ST_CHUNK_SIZE:
      case ST_CHUNK_EXT:
        return chunk_size_byte (guard, c);
      case ST_CHUNK_CR:
        if (c != '\r')
          return fail (guard, BS_ERROR_BAD_REQUEST, "chunk data longer than its size");
        guard->state = ST_CHUNK_DATA_LF;
        return TRUE;
      default:
        g_return_val_if_reached (FALSE);
    }
}

/* Body bytes need no look: take as many as the body has left at once. */
static gsize
body_run (BsHttpGuard *guard, gsize avail)
{
  gsize n = (gsize) MIN ((guint64) avail, guard->remaining);

  guard->remaining -= n;
  if (guard->remaining == 0)
    {
      if (guard->state == ST_BODY)
        end_request (guard);
      else
        guard->state = ST_CHUNK_CR;
    }
  return n;
}

gsize
bs_http_guard_scan (BsHttpGuard *guard, guint8 *data, gsize len)
{
  gsize in = 0, out = 0;

  while (in < len && guard->state != ST_FAILED)
    {
      gboolean drop = FALSE;
      gboolean was_line_end = FALSE;

      if (guard->state == ST_BODY || guard->state == ST_CHUNK_DATA)
        {
          gsize n = body_run (guard, len - in);
          if (out != in)
            memmove (data + out, data + in, n);
          in += n;
          out += n;
          continue;
        }
      was_line_end = data[in] == '\n';
      if (!scan_byte (guard, data[in], &drop))
        break;
      if (!drop)
        data[out++] = data[in];
      if (was_line_end && guard->state != ST_IDLE)
        guard->line_handed_on = TRUE;
      in++;
    }
  return out;
}

gboolean
bs_http_guard_failed (BsHttpGuard *guard)
{
  return guard->state == ST_FAILED;
}

int
bs_http_guard_get_error_code (BsHttpGuard *guard)
{
  return guard->error_code;
}

const char *
bs_http_guard_get_error_message (BsHttpGuard *guard)
{
  return guard->error_message;
}

gboolean
bs_http_guard_is_idle (BsHttpGuard *guard)
{
  return guard->state == ST_IDLE || guard->state == ST_IDLE_LF;
}

gboolean
bs_http_guard_head_has_no_line (BsHttpGuard *guard)
{
  switch (guard->state)
    {
      case ST_IDLE:
      case ST_IDLE_LF:
        return TRUE;
      case ST_METHOD:
      case ST_TARGET:
      case ST_VERSION:
      case ST_LINE_LF:
      case ST_LINE_START:
      case ST_NAME:
      case ST_VALUE:
      case ST_END_LF:
        return !guard->in_trailers && !guard->line_handed_on;
      case ST_FAILED:
        return guard->failed_before_first_line;
      default:
        return FALSE;
    }
}

guint64
bs_http_guard_get_requests_begun (BsHttpGuard *guard)
{
  return guard->begun;
}

guint64
bs_http_guard_get_requests_read (BsHttpGuard *guard)
{
  return guard->read;
}

const char *
bs_http_guard_get_method (BsHttpGuard *guard)
{
  return guard->method_len > 0 ? guard->method : "-";
}

const char *
bs_http_guard_get_target (BsHttpGuard *guard)
{
  return guard->target->len > 0 ? guard->target->str : "-";
}
