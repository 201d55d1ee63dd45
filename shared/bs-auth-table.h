/* bs-auth-table.h: the pieces of bearer tokens: a tokens file parsed into a
 * table of names and SHA-256 hashes, the constant-time comparison, the
 * Authorization header, and a file that holds one token. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BS_AUTH_DIGEST_LEN 32  /* SHA-256 */
#define BS_AUTH_NAME_MAX 64    /* a token's name: [A-Za-z0-9._@-] */
#define BS_AUTH_TOKEN_MAX 4096 /* longer tokens are refused */

/* TRUE when the @len bytes at @a and @b are equal; the time taken does not
 * depend on where they differ. */
gboolean bs_auth_equal (const guint8 *a, const guint8 *b, gsize len);

typedef struct _BsAuthTable BsAuthTable;

/* Parse the text of a tokens file. BS_ERROR_CONFIG names the first bad line
 * by its number, never by its content (a token pasted by mistake must not
 * reach the log). A table may be empty: then every protected request is
 * refused. */
BsAuthTable *bs_auth_table_parse (const char *text, gsize len, GError **error);
BsAuthTable *bs_auth_table_ref (BsAuthTable *table);
void bs_auth_table_unref (BsAuthTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsAuthTable, bs_auth_table_unref)
guint bs_auth_table_size (BsAuthTable *table);
/* The name of the entry whose hash is SHA-256(@token), or NULL. Every entry
 * is compared, whichever matches. */
const char *bs_auth_table_lookup (BsAuthTable *table, const char *token, gsize token_len);

/* The token of an Authorization header value ("Bearer <token>", the scheme
 * in any case): a pointer into @header and its length, or NULL when the
 * value is not a well-formed bearer credential. */
const char *bs_auth_parse_bearer (const char *header, gsize *token_len);

/* The text of a file that holds one token (ORDERS_API_TOKEN_FILE): the
 * token without surrounding white space; BS_ERROR_CONFIG, naming @what, when
 * it is empty or holds anything but one printable word. */
char *bs_auth_token_from_text (const char *what, const char *text, gsize len, GError **error);

/* Where a secret comes from: the file named by @variable, else the systemd
 * credential @credential ($CREDENTIALS_DIRECTORY/@credential) when it
 * exists, else NULL (not configured). BS_ERROR_CONFIG when @variable names
 * no file. *@what describes the source for messages. */
char *bs_auth_secret_path (const char *variable, const char *credential, char **what,
                           GError **error);

G_END_DECLS
