/* bs-auth.c: the service's bearer tokens, shared by its event loops. */
#include "bs-auth.h"

#include "bs-error.h"

#include <gio/gio.h>
#include <string.h>

#define UNKNOWN_SUBJECT "-"

struct _BsAuth
{
  gint ref_count;
  char *path;
  char *source;           /* "API_TOKENS_FILE=/etc/..." or "credential api-tokens" */
  char **protected_reads; /* path prefixes */
  GRWLock lock;           /* guards the pointer below, never held across I/O */
  BsAuthTable *table;
};

static BsAuthTable *
table_from_text (BsAuth *auth, const char *text, gsize len, GError **error)
{
  BsAuthTable *table = bs_auth_table_parse (text, len, error);

  if (table == NULL)
    g_prefix_error (error, "%s: ", auth->source);
  return table;
}

BsAuth *
bs_auth_new_from_environment (const char *const *protected_reads, GError **error)
{
  g_autofree char *source = NULL;
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (BsAuth) auth = NULL;
  gsize len = 0;

  path = bs_auth_secret_path (BS_AUTH_TOKENS_VARIABLE, BS_AUTH_TOKENS_CREDENTIAL, &source,
                              &local_error);
  if (path == NULL)
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (!g_file_get_contents (path, &text, &len, &local_error))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s: %s", source, local_error->message);
      return NULL;
    }
  auth = g_new0 (BsAuth, 1);
  auth->ref_count = 1;
  g_rw_lock_init (&auth->lock);
  auth->path = g_steal_pointer (&path);
  auth->source = g_steal_pointer (&source);
  auth->protected_reads = g_strdupv ((char **) protected_reads);
  auth->table = table_from_text (auth, text, len, error);
  if (auth->table == NULL)
    return NULL;
  return g_steal_pointer (&auth);
}

BsAuth *
bs_auth_ref (BsAuth *auth)
{
  g_atomic_int_inc (&auth->ref_count);
  return auth;
}

void
bs_auth_unref (BsAuth *auth)
{
  if (auth == NULL || !g_atomic_int_dec_and_test (&auth->ref_count))
    return;
  g_clear_pointer (&auth->table, bs_auth_table_unref);
  g_rw_lock_clear (&auth->lock);
  g_strfreev (auth->protected_reads);
  g_free (auth->source);
  g_free (auth->path);
  g_free (auth);
}

const char *
bs_auth_get_source (BsAuth *auth)
{
  return auth->source;
}

/* The table in use, with a reference of its own: a reload may swap it. */
static BsAuthTable *
current_table (BsAuth *auth)
{
  BsAuthTable *table;

  g_rw_lock_reader_lock (&auth->lock);
  table = bs_auth_table_ref (auth->table);
  g_rw_lock_reader_unlock (&auth->lock);
  return table;
}

guint
bs_auth_get_n_tokens (BsAuth *auth)
{
  g_autoptr (BsAuthTable) table = current_table (auth);

  return bs_auth_table_size (table);
}

gboolean
bs_auth_replace (BsAuth *auth, const char *text, gsize len, GError **error)
{
  BsAuthTable *table = table_from_text (auth, text, len, error);
  BsAuthTable *old;

  if (table == NULL)
    return FALSE;
  g_rw_lock_writer_lock (&auth->lock);
  old = auth->table;
  auth->table = table;
  g_rw_lock_writer_unlock (&auth->lock);
  bs_auth_table_unref (old); /* checks still using it hold their own reference */
  return TRUE;
}

typedef struct
{
  BsAuth *auth;
  BsAuthReloadDone done;
  gpointer user_data;
} Reload;

static void
reload_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree Reload *reload = user_data;
  g_autoptr (BsAuth) auth = reload->auth;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) read_error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  if (!g_file_load_contents_finish (G_FILE (source), result, &text, &len, NULL, &read_error))
    g_set_error (&error, BS_ERROR, BS_ERROR_CONFIG, "%s: %s", auth->source, read_error->message);
  else
    bs_auth_replace (auth, text, len, &error);
  reload->done (auth, error, reload->user_data);
}

void
bs_auth_reload_async (BsAuth *auth, BsAuthReloadDone done, gpointer user_data)
{
  g_autoptr (GFile) file = g_file_new_for_path (auth->path);
  Reload *reload = g_new0 (Reload, 1);

  reload->auth = bs_auth_ref (auth);
  reload->done = done;
  reload->user_data = user_data;
  g_file_load_contents_async (file, NULL, reload_loaded, reload);
}

gboolean
bs_auth_is_protected (BsAuth *auth, const char *method, const char *path)
{
  if (!g_str_equal (method, "GET") && !g_str_equal (method, "HEAD"))
    return TRUE;
  for (char **prefix = auth->protected_reads; prefix != NULL && *prefix != NULL; prefix++)
    {
      gsize len = strlen (*prefix);

      if (strncmp (path, *prefix, len) == 0 && (path[len] == '\0' || path[len] == '/'))
        return TRUE;
    }
  return FALSE;
}

const char *
bs_auth_result_name (BsAuthResult result)
{
  switch (result)
    {
      case BS_AUTH_OK:
        return "ok";
      case BS_AUTH_MISSING:
        return "missing";
      case BS_AUTH_MALFORMED:
        return "malformed";
      case BS_AUTH_UNKNOWN:
      default:
        return "unknown";
    }
}

BsMetricFamily *
bs_auth_metrics_new (BsMetrics *metrics)
{
  BsMetricFamily *family = bs_metrics_counter (
      metrics, "http_auth_total",
      "Requests that needed a bearer token, by the token's name (\"-\" when none matched) and "
      "result (ok, missing, malformed, unknown).",
      (const char *const[]){ "subject", "result", NULL });

  for (BsAuthResult r = BS_AUTH_MISSING; r <= BS_AUTH_UNKNOWN; r++)
    bs_metric_inc (family, (const char *const[]){ UNKNOWN_SUBJECT, bs_auth_result_name (r), NULL },
                   0);
  return family;
}

BsAuthResult
bs_auth_check (BsAuth *auth, BsMetricFamily *counter, const char *authorization, char **subject)
{
  BsAuthResult result = BS_AUTH_OK;
  const char *token = NULL;
  gsize token_len = 0;
  const char *name = NULL;

  if (authorization == NULL)
    result = BS_AUTH_MISSING;
  else if ((token = bs_auth_parse_bearer (authorization, &token_len)) == NULL)
    result = BS_AUTH_MALFORMED;
  else
    {
      g_autoptr (BsAuthTable) table = current_table (auth);

      name = bs_auth_table_lookup (table, token, token_len);
      if (name == NULL)
        result = BS_AUTH_UNKNOWN;
      else
        *subject = g_strdup (name);
    }
  if (counter != NULL)
    bs_metric_inc (counter,
                   (const char *const[]){ result == BS_AUTH_OK ? *subject : UNKNOWN_SUBJECT,
                                          bs_auth_result_name (result), NULL },
                   1);
  return result;
}
