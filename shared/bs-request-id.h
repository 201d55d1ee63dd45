/* bs-request-id.h: X-Request-ID sanitising and generation. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BS_REQUEST_ID_MAX_LEN 128

/* TRUE when @id is non-empty, at most 128 bytes, and printable ASCII
 * without spaces or quotes (safe in headers, logs and JSON). */
gboolean bs_request_id_is_sane (const char *id);

/* A copy of @header when it is sane, otherwise a fresh random UUID. */
char *bs_request_id_from_header (const char *header);

G_END_DECLS
