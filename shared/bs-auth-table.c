/* bs-auth-table.c: a tokens file parsed into names and SHA-256 hashes, and
 * the small parsers around bearer tokens. Nothing here logs; no message
 * quotes a line of a tokens file or a token. */
#include "bs-auth-table.h"

#include "bs-error.h"

#include <string.h>

typedef struct
{
  char *name;
  guint8 digest[BS_AUTH_DIGEST_LEN];
} Entry;

struct _BsAuthTable
{
  GArray *entries; /* Entry */
};

gboolean
bs_auth_equal (const guint8 *a, const guint8 *b, gsize len)
{
  /* volatile: the compiler must not turn the loop into an early exit */
  volatile guint8 diff = 0;

  for (gsize i = 0; i < len; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

static void
entry_clear (gpointer data)
{
  Entry *entry = data;

  g_free (entry->name);
}

static void
table_clear (gpointer data)
{
  BsAuthTable *table = data;

  g_array_unref (table->entries);
}

BsAuthTable *
bs_auth_table_ref (BsAuthTable *table)
{
  return g_atomic_rc_box_acquire (table);
}

void
bs_auth_table_unref (BsAuthTable *table)
{
  if (table != NULL)
    g_atomic_rc_box_release_full (table, table_clear);
}

guint
bs_auth_table_size (BsAuthTable *table)
{
  return table->entries->len;
}

static gboolean
name_is_valid (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > BS_AUTH_NAME_MAX)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._@-", *p) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
parse_digest (const char *hex, guint8 *digest)
{
  if (strlen (hex) != BS_AUTH_DIGEST_LEN * 2)
    return FALSE;
  for (gsize i = 0; i < BS_AUTH_DIGEST_LEN; i++)
    {
      int high = g_ascii_xdigit_value (hex[2 * i]);
      int low = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (high < 0 || low < 0)
        return FALSE;
      digest[i] = (guint8) (high << 4 | low);
    }
  return TRUE;
}

/* One line, stripped, that is neither blank nor a comment. */
static gboolean
parse_entry (char *line, Entry *entry)
{
  char *colon = strchr (line, ':');
  char *name;
  char *hex;

  if (colon == NULL)
    return FALSE;
  *colon = '\0';
  name = g_strstrip (line);
  hex = g_strstrip (colon + 1);
  if (!name_is_valid (name) || !parse_digest (hex, entry->digest))
    return FALSE;
  entry->name = g_strdup (name);
  return TRUE;
}

static gint
find_digest (GArray *entries, const guint8 *digest)
{
  for (guint i = 0; i < entries->len; i++)
    if (memcmp (g_array_index (entries, Entry, i).digest, digest, BS_AUTH_DIGEST_LEN) == 0)
      return (gint) i;
  return -1;
}

BsAuthTable *
bs_auth_table_parse (const char *text, gsize len, GError **error)
{
  g_autoptr (GArray) entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_autoptr (GArray) line_numbers = g_array_new (FALSE, FALSE, sizeof (guint));
  g_auto (GStrv) lines = NULL;
  BsAuthTable *table;

  g_array_set_clear_func (entries, entry_clear);
  if (memchr (text, '\0', len) != NULL)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_CONFIG,
                           "holds a NUL byte: not a text file of name:sha256 lines");
      return NULL;
    }
  {
    g_autofree char *copy = g_strndup (text, len);
    lines = g_strsplit (copy, "\n", -1);
  }
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]); /* also drops a '\r' of CRLF */
      Entry entry = { 0 };
      guint number = i + 1;
      gint same;

      if (*line == '\0' || *line == '#')
        continue;
      if (!parse_entry (line, &entry))
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "line %u: expected NAME:SHA256 (a name of up to %d letters, digits, "
                       "'.', '_', '@' or '-', a colon, 64 hex digits)",
                       number, BS_AUTH_NAME_MAX);
          return NULL;
        }
      same = find_digest (entries, entry.digest);
      if (same >= 0)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "line %u: the same hash as line %u",
                       number, g_array_index (line_numbers, guint, same));
          entry_clear (&entry);
          return NULL;
        }
      g_array_append_val (entries, entry);
      g_array_append_val (line_numbers, number);
    }
  table = g_atomic_rc_box_new0 (BsAuthTable);
  table->entries = g_steal_pointer (&entries);
  return table;
}

const char *
bs_auth_table_lookup (BsAuthTable *table, const char *token, gsize token_len)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[BS_AUTH_DIGEST_LEN];
  gsize digest_len = sizeof digest;
  const char *found = NULL;

  g_checksum_update (checksum, (const guchar *) token, (gssize) token_len);
  g_checksum_get_digest (checksum, digest, &digest_len);
  /* every entry, whether one matched already or not */
  for (guint i = 0; i < table->entries->len; i++)
    {
      const Entry *entry = &g_array_index (table->entries, Entry, i);
      gboolean equal = bs_auth_equal (entry->digest, digest, BS_AUTH_DIGEST_LEN);

      if (equal && found == NULL)
        found = entry->name;
    }
  return found;
}

static gboolean
is_token_char (char c)
{
  return c > ' ' && c < 0x7f;
}

const char *
bs_auth_parse_bearer (const char *header, gsize *token_len)
{
  const char *p = header;
  const char *token;

  if (header == NULL || g_ascii_strncasecmp (p, "Bearer", 6) != 0)
    return NULL;
  p += 6;
  if (*p != ' ')
    return NULL;
  while (*p == ' ')
    p++;
  token = p;
  while (is_token_char (*p))
    p++;
  *token_len = (gsize) (p - token);
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p != '\0' || *token_len == 0 || *token_len > BS_AUTH_TOKEN_MAX)
    return NULL;
  return token;
}

char *
bs_auth_token_from_text (const char *what, const char *text, gsize len, GError **error)
{
  g_autofree char *token = NULL;

  if (memchr (text, '\0', len) != NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s holds a NUL byte", what);
      return NULL;
    }
  token = g_strstrip (g_strndup (text, len));
  if (*token == '\0' || strlen (token) > BS_AUTH_TOKEN_MAX)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s: expected one token of 1 to %d characters",
                   what, BS_AUTH_TOKEN_MAX);
      return NULL;
    }
  for (const char *p = token; *p != '\0'; p++)
    if (!is_token_char (*p))
      {
        g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                     "%s: expected one token (printable ASCII, no spaces)", what);
        return NULL;
      }
  return g_steal_pointer (&token);
}

char *
bs_auth_secret_path (const char *variable, const char *credential, char **what, GError **error)
{
  const char *value = g_getenv (variable);
  const char *directory = g_getenv ("CREDENTIALS_DIRECTORY");
  g_autofree char *path = NULL;

  if (value != NULL && *value != '\0')
    {
      if (!g_file_test (value, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s=\"%s\" is not a readable file",
                       variable, value);
          return NULL;
        }
      *what = g_strdup_printf ("%s=%s", variable, value);
      return g_strdup (value);
    }
  if (directory == NULL || *directory == '\0')
    return NULL;
  path = g_build_filename (directory, credential, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  *what = g_strdup_printf ("credential %s", credential);
  return g_steal_pointer (&path);
}
