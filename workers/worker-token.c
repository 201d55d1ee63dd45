/* worker-token.c: the token the worker's jobs send to the Orders API. Never
 * logged: messages name the file, not what it holds. */
#include "worker-token.h"

#include "bs-auth-table.h"
#include "bs-error.h"

#include <gio/gio.h>

struct _WorkerToken
{
  char *path;
  char *source; /* for messages */
  char *authorization;
};

/* "Bearer <token>" from the text of the file. */
static char *
authorization_from_text (WorkerToken *token, const char *text, gsize len, GError **error)
{
  g_autofree char *value = bs_auth_token_from_text (token->source, text, len, error);

  return value != NULL ? g_strconcat ("Bearer ", value, NULL) : NULL;
}

WorkerToken *
worker_token_new_from_environment (GError **error)
{
  g_autoptr (WorkerToken) token = g_new0 (WorkerToken, 1);
  g_autoptr (GError) local_error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  token->path = bs_auth_secret_path (WORKER_TOKEN_VARIABLE, WORKER_TOKEN_CREDENTIAL, &token->source,
                                     &local_error);
  if (token->path == NULL)
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (!g_file_get_contents (token->path, &text, &len, &local_error))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s: %s", token->source, local_error->message);
      return NULL;
    }
  token->authorization = authorization_from_text (token, text, len, error);
  if (token->authorization == NULL)
    return NULL;
  return g_steal_pointer (&token);
}

void
worker_token_free (WorkerToken *token)
{
  if (token == NULL)
    return;
  g_free (token->path);
  g_free (token->source);
  g_free (token->authorization);
  g_free (token);
}

const char *
worker_token_get_authorization (WorkerToken *token)
{
  return token->authorization;
}

typedef struct
{
  BsService *service;
  WorkerToken *token;
} Reload;

static void
reload_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree Reload *reload = user_data;
  WorkerToken *token = reload->token;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *authorization = NULL;
  gsize len = 0;

  if (!g_file_load_contents_finish (G_FILE (source), result, &text, &len, NULL, &error))
    g_warning ("reloading the Orders API token failed; the token in use stays: %s: %s",
               token->source, error->message);
  else if ((authorization = authorization_from_text (token, text, len, &error)) == NULL)
    g_warning ("reloading the Orders API token failed; the token in use stays: %s", error->message);
  else
    {
      g_free (token->authorization);
      token->authorization = g_steal_pointer (&authorization);
      g_message ("Orders API token reloaded from %s", token->source);
    }
  bs_service_reload_release (reload->service);
}

void
worker_token_reload (BsService *service, gpointer user_data)
{
  WorkerToken *token = user_data;
  g_autoptr (GFile) file = g_file_new_for_path (token->path);
  Reload *reload = g_new0 (Reload, 1);

  reload->service = service;
  reload->token = token;
  bs_service_reload_hold (service);
  g_file_load_contents_async (file, NULL, reload_loaded, reload);
}
