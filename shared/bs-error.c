/* bs-error.c: one table from error code to HTTP status and code name. */
#include "bs-error.h"

/* clang-format off */
G_DEFINE_QUARK (bs-error-quark, bs_error)
/* clang-format on */

typedef struct
{
  guint status;
  const char *name;
} BsErrorInfo;

static const BsErrorInfo error_table[] = {
  [BS_ERROR_VALIDATION] = { 400, "VALIDATION_ERROR" },
  [BS_ERROR_MALFORMED_JSON] = { 400, "MALFORMED_JSON" },
  [BS_ERROR_NOT_FOUND] = { 404, "NOT_FOUND" },
  [BS_ERROR_METHOD_NOT_ALLOWED] = { 405, "METHOD_NOT_ALLOWED" },
  [BS_ERROR_CONFLICT] = { 409, "CONFLICT" },
  [BS_ERROR_GONE] = { 410, "GONE" },
  [BS_ERROR_PAYLOAD_TOO_LARGE] = { 413, "PAYLOAD_TOO_LARGE" },
  [BS_ERROR_UNSUPPORTED_MEDIA_TYPE] = { 415, "UNSUPPORTED_MEDIA_TYPE" },
  [BS_ERROR_INTERNAL] = { 500, "INTERNAL_ERROR" },
  [BS_ERROR_UNAVAILABLE] = { 503, "SERVICE_UNAVAILABLE" },
  [BS_ERROR_TIMEOUT] = { 503, "TIMEOUT" },
  [BS_ERROR_RETRY] = { 503, "RETRY" },
  [BS_ERROR_BAD_GATEWAY] = { 502, "BAD_GATEWAY" },
  [BS_ERROR_BOOK_NOT_ORDERABLE] = { 409, "BOOK_NOT_ORDERABLE" },
  [BS_ERROR_IDEMPOTENCY_CONFLICT] = { 409, "IDEMPOTENCY_CONFLICT" },
  [BS_ERROR_CONFIG] = { 500, "CONFIGURATION_ERROR" },
  [BS_ERROR_BAD_REQUEST] = { 400, "BAD_REQUEST" },
  [BS_ERROR_URI_TOO_LONG] = { 414, "URI_TOO_LONG" },
  [BS_ERROR_HEADERS_TOO_LARGE] = { 431, "HEADERS_TOO_LARGE" },
  [BS_ERROR_EXPECTATION_FAILED] = { 417, "EXPECTATION_FAILED" },
  [BS_ERROR_HTTP_VERSION] = { 505, "HTTP_VERSION_NOT_SUPPORTED" },
  [BS_ERROR_UNAUTHORIZED] = { 401, "UNAUTHORIZED" },
  [BS_ERROR_TOO_MANY_REQUESTS] = { 429, "TOO_MANY_REQUESTS" },
};

static const BsErrorInfo *
lookup (const GError *error)
{
  static const BsErrorInfo internal = { 500, "INTERNAL_ERROR" };

  if (error == NULL || error->domain != BS_ERROR || error->code < 0
      || (gsize) error->code >= G_N_ELEMENTS (error_table))
    return &internal;
  return &error_table[error->code];
}

guint
bs_error_http_status (const GError *error)
{
  return lookup (error)->status;
}

const char *
bs_error_code_name (const GError *error)
{
  return lookup (error)->name;
}

BsErrorCode
bs_error_code_from_sqlstate (const char *sqlstate)
{
  if (sqlstate == NULL)
    return BS_ERROR_UNAVAILABLE;
  if (g_str_equal (sqlstate, "23505"))
    return BS_ERROR_CONFLICT;
  if (g_str_has_prefix (sqlstate, "23") || g_str_has_prefix (sqlstate, "22"))
    return BS_ERROR_VALIDATION; /* integrity or data exception: bad input slipped past us */
  if (g_str_equal (sqlstate, "40001") || g_str_equal (sqlstate, "40P01"))
    return BS_ERROR_RETRY;
  if (g_str_equal (sqlstate, "57014"))
    return BS_ERROR_TIMEOUT; /* statement_timeout or cancel */
  if (g_str_has_prefix (sqlstate, "08") || g_str_has_prefix (sqlstate, "57P")
      || g_str_has_prefix (sqlstate, "53"))
    return BS_ERROR_UNAVAILABLE; /* connection, shutdown, resources */
  if (g_str_equal (sqlstate, "25006"))
    return BS_ERROR_UNAVAILABLE; /* read-only: a standby, the primary moved (a switchover) */
  return BS_ERROR_INTERNAL;
}
