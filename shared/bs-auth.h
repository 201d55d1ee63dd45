/* bs-auth.h: bearer tokens on writes (API_TOKENS_FILE or the credential
 * "api-tokens"): the token table, its reload, and the check of one request.
 *
 * The file holds one "name:sha256-hex-of-token" per line, '#' comments and
 * blank lines. Only hashes are kept; a presented token is hashed and compared
 * with every entry in constant time. The table is shared by every event
 * loop: a reload swaps it under a lock held for a pointer swap, a check holds
 * the same lock (for reading) for the comparisons only. */
#pragma once

#include "bs-auth-table.h"
#include "bs-metrics.h"

#include <glib.h>

G_BEGIN_DECLS

#define BS_AUTH_TOKENS_VARIABLE "API_TOKENS_FILE"
#define BS_AUTH_TOKENS_CREDENTIAL "api-tokens"

typedef struct _BsAuth BsAuth;

/* Read API_TOKENS_FILE (or the credential): NULL without an error when
 * neither is configured (writes stay open). @protected_reads: path prefixes
 * ("/v1/orders") whose GET and HEAD also need a token; NULL for none. */
BsAuth *bs_auth_new_from_environment (const char *const *protected_reads, GError **error);
BsAuth *bs_auth_ref (BsAuth *auth);
void bs_auth_unref (BsAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsAuth, bs_auth_unref)

const char *bs_auth_get_source (BsAuth *auth);
guint bs_auth_get_n_tokens (BsAuth *auth);

/* Install a table read from @text (the new contents of the file); on
 * error the tokens in use stay. */
gboolean bs_auth_replace (BsAuth *auth, const char *text, gsize len, GError **error);

/* Re-read the file without blocking the loop; then @done runs on the
 * caller's thread-default context (the tokens stayed when @error is set). */
typedef void (*BsAuthReloadDone) (BsAuth *auth, const GError *error, gpointer user_data);
void bs_auth_reload_async (BsAuth *auth, BsAuthReloadDone done, gpointer user_data);

/* Does @method on @path need a token? Anything but GET and HEAD does, and
 * GET and HEAD under a protected prefix. */
gboolean bs_auth_is_protected (BsAuth *auth, const char *method, const char *path);

typedef enum
{
  BS_AUTH_OK,
  BS_AUTH_MISSING,   /* no Authorization header */
  BS_AUTH_MALFORMED, /* not "Bearer <token>" */
  BS_AUTH_UNKNOWN,   /* a bearer token of no entry */
} BsAuthResult;

const char *bs_auth_result_name (BsAuthResult result);

/* The counter bs_auth_check() counts into: one per event loop's metrics. */
BsMetricFamily *bs_auth_metrics_new (BsMetrics *metrics);

/* Check the Authorization header value @authorization (may be NULL); on
 * BS_AUTH_OK *@subject is the token's name (free it). Counts the result in
 * @counter (may be NULL). Safe from any thread. */
BsAuthResult bs_auth_check (BsAuth *auth, BsMetricFamily *counter, const char *authorization,
                            char **subject);

G_END_DECLS
