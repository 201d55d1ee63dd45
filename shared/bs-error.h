/* bs-error.h: the one error domain of Bookstore, and its mapping to HTTP. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BS_ERROR (bs_error_quark ())

typedef enum
{
  BS_ERROR_VALIDATION,             /* 400 VALIDATION_ERROR */
  BS_ERROR_MALFORMED_JSON,         /* 400 MALFORMED_JSON */
  BS_ERROR_NOT_FOUND,              /* 404 NOT_FOUND */
  BS_ERROR_METHOD_NOT_ALLOWED,     /* 405 METHOD_NOT_ALLOWED */
  BS_ERROR_CONFLICT,               /* 409 CONFLICT */
  BS_ERROR_GONE,                   /* 410 GONE */
  BS_ERROR_PAYLOAD_TOO_LARGE,      /* 413 PAYLOAD_TOO_LARGE */
  BS_ERROR_UNSUPPORTED_MEDIA_TYPE, /* 415 UNSUPPORTED_MEDIA_TYPE */
  BS_ERROR_INTERNAL,               /* 500 INTERNAL_ERROR */
  BS_ERROR_UNAVAILABLE,            /* 503 SERVICE_UNAVAILABLE */
  BS_ERROR_TIMEOUT,                /* 503 TIMEOUT */
  BS_ERROR_RETRY,                  /* 503 RETRY (serialization failure, deadlock) */
  BS_ERROR_BAD_GATEWAY,            /* 502 BAD_GATEWAY (an upstream answered nonsense) */
  BS_ERROR_BOOK_NOT_ORDERABLE,     /* 409 BOOK_NOT_ORDERABLE */
  BS_ERROR_IDEMPOTENCY_CONFLICT,   /* 409 IDEMPOTENCY_CONFLICT */
  BS_ERROR_CONFIG,                 /* bad configuration; never sent over HTTP */
  BS_ERROR_BAD_REQUEST,            /* 400 BAD_REQUEST (the HTTP message itself is malformed) */
  BS_ERROR_URI_TOO_LONG,           /* 414 URI_TOO_LONG */
  BS_ERROR_HEADERS_TOO_LARGE,      /* 431 HEADERS_TOO_LARGE */
  BS_ERROR_EXPECTATION_FAILED,     /* 417 EXPECTATION_FAILED */
  BS_ERROR_HTTP_VERSION,           /* 505 HTTP_VERSION_NOT_SUPPORTED */
  BS_ERROR_UNAUTHORIZED,           /* 401 UNAUTHORIZED (no or a wrong bearer token) */
  BS_ERROR_TOO_MANY_REQUESTS,      /* 429 TOO_MANY_REQUESTS (a client over its rate of writes) */
} BsErrorCode;

GQuark bs_error_quark (void);

/* HTTP status for an error; errors of other domains are 500. */
guint bs_error_http_status (const GError *error);

/* Stable machine-readable code for the JSON body ("VALIDATION_ERROR", ...). */
const char *bs_error_code_name (const GError *error);

/* Map a PostgreSQL SQLSTATE to our error codes (23505 → CONFLICT, ...). */
BsErrorCode bs_error_code_from_sqlstate (const char *sqlstate);

G_END_DECLS
