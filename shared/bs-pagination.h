/* bs-pagination.h: limit/offset query parameters, X-Total-Count and Link. */
#pragma once

#include "bs-request.h"

G_BEGIN_DECLS

#define BS_PAGE_DEFAULT_LIMIT 20
#define BS_PAGE_MAX_LIMIT 100
#define BS_PAGE_MAX_OFFSET G_GINT64_CONSTANT (1000000000)

typedef struct
{
  gint64 limit;
  gint64 offset;
} BsPage;

/* limit (1..100, default 20) and offset (>= 0, default 0); 400 otherwise. */
gboolean bs_page_from_request (BsRequest *request, BsPage *page, GError **error);

/* RFC 8288 Link value with rel="next"/rel="prev" for @path, or NULL when
 * there is neither. */
char *bs_page_link_header (const char *path, const BsPage *page, gint64 total);

/* Set X-Total-Count and Link on the response. */
void bs_page_set_headers (BsRequest *request, const BsPage *page, gint64 total);

/* A path parameter that must be a positive 64-bit id; 400 otherwise. */
gboolean bs_request_get_id_param (BsRequest *request, const char *name, gint64 *out,
                                  GError **error);

/* Parse a positive decimal id ("1".."9223372036854775807"), digits only. */
gboolean bs_parse_id (const char *text, const char *what, gint64 *out, GError **error);

G_END_DECLS
