/* bs-api-explorer.h: GET /docs, an interactive explorer of the service's
 * /openapi.json (Swagger UI), as FastAPI serves one: the page, its start
 * script (/docs/init.js) and Swagger UI's files (/docs/assets/{file}), read
 * into memory once at start, or loaded by the browser from a URL the
 * operator names. docs/api-explorer.md tells the whole story. */
#pragma once

#include "bs-router.h"

#include <glib.h>

G_BEGIN_DECLS

#define BS_API_EXPLORER_DIR_VARIABLE "DOCS_ASSETS_DIR"
#define BS_API_EXPLORER_URL_VARIABLE "DOCS_ASSETS_URL"
/* An asset larger than this is not loaded (a wrong directory, not Swagger UI). */
#define BS_API_EXPLORER_MAX_ASSET (32 * 1024 * 1024)

typedef struct _BsApiExplorer BsApiExplorer;

/* @title: the page's title. With @assets_url (http:// or https://, a host,
 * an optional path; no query, fragment or user), the page loads
 * swagger-ui-bundle.js and swagger-ui.css from there: a URL of another shape
 * is BS_ERROR_CONFIG naming @url_variable. Otherwise the allowed files of
 * @assets_dir are read now (blocking: call at start); missing ones are no
 * error, bs_api_explorer_get_problem() says what is missing and /docs
 * answers 404 saying so. The explorer is immutable once made: every event
 * loop's router may serve it. */
BsApiExplorer *bs_api_explorer_new (const char *title, const char *assets_dir,
                                    const char *assets_url, const char *url_variable,
                                    GError **error);
void bs_api_explorer_free (BsApiExplorer *explorer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsApiExplorer, bs_api_explorer_free)

/* NULL when /docs works; else why it does not, for the caller to log. */
const char *bs_api_explorer_get_problem (BsApiExplorer *explorer);
/* Where the page loads Swagger UI from: the URL, or "docs/assets" (this
 * server, from the directory). */
const char *bs_api_explorer_get_assets_base (BsApiExplorer *explorer);

/* GET (and HEAD) /docs, /docs/init.js and /docs/assets/{file} on @router;
 * @explorer must outlive it. */
void bs_api_explorer_add_routes (BsApiExplorer *explorer, BsRouter *router);

/* The page (text/html) and its Content-Security-Policy. */
GBytes *bs_api_explorer_get_page (BsApiExplorer *explorer);
const char *bs_api_explorer_get_csp (BsApiExplorer *explorer);

/* The Content-Type of an asset /docs/assets/ serves, by its exact name;
 * NULL for any other name. */
const char *bs_api_explorer_asset_type (const char *name);

/* Does an If-None-Match header value (may be NULL) match @etag ("\"...\"")?
 * Weak comparison, as RFC 9110 asks for If-None-Match; "*" matches. */
gboolean bs_api_explorer_etag_matches (const char *if_none_match, const char *etag);

G_END_DECLS
