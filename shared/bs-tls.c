/* bs-tls.c: the certificate behind a lock held for a reference count. */
#include "bs-tls.h"

#include "bs-auth-table.h"
#include "bs-error.h"

struct _BsTlsIdentity
{
  gatomicrefcount ref;
  char *cert_path;
  char *key_path;
  char *source;
  GMutex lock;
  GTlsCertificate *certificate; /* under lock */
};

static GTlsCertificate *
load (const BsTlsIdentity *identity, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  GTlsCertificate *certificate
      = g_tls_certificate_new_from_files (identity->cert_path, identity->key_path, &local_error);

  if (certificate == NULL)
    g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "TLS certificate from %s: %s", identity->source,
                 local_error->message);
  return certificate;
}

BsTlsIdentity *
bs_tls_identity_new_from_environment (GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *cert_what = NULL;
  g_autofree char *key_what = NULL;
  g_autofree char *cert_path = bs_auth_secret_path (BS_TLS_CERT_VARIABLE, BS_TLS_CERT_CREDENTIAL,
                                                    &cert_what, &local_error);
  g_autofree char *key_path = NULL;
  g_autoptr (BsTlsIdentity) identity = NULL;

  if (local_error == NULL)
    key_path
        = bs_auth_secret_path (BS_TLS_KEY_VARIABLE, BS_TLS_KEY_CREDENTIAL, &key_what, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (cert_path == NULL && key_path == NULL)
    return NULL;
  if (cert_path == NULL || key_path == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s without %s: HTTPS needs both the certificate and its key (%s and %s, or "
                   "the credentials %s and %s)",
                   cert_path != NULL ? cert_what : key_what,
                   cert_path != NULL ? "a key" : "a certificate", BS_TLS_CERT_VARIABLE,
                   BS_TLS_KEY_VARIABLE, BS_TLS_CERT_CREDENTIAL, BS_TLS_KEY_CREDENTIAL);
      return NULL;
    }
  identity = g_new0 (BsTlsIdentity, 1);
  g_atomic_ref_count_init (&identity->ref);
  g_mutex_init (&identity->lock);
  identity->cert_path = g_steal_pointer (&cert_path);
  identity->key_path = g_steal_pointer (&key_path);
  identity->source = g_strdup_printf ("%s and %s", cert_what, key_what);
  identity->certificate = load (identity, error);
  if (identity->certificate == NULL)
    return NULL;
  return g_steal_pointer (&identity);
}

BsTlsIdentity *
bs_tls_identity_ref (BsTlsIdentity *identity)
{
  g_atomic_ref_count_inc (&identity->ref);
  return identity;
}

void
bs_tls_identity_unref (BsTlsIdentity *identity)
{
  if (identity == NULL || !g_atomic_ref_count_dec (&identity->ref))
    return;
  g_clear_object (&identity->certificate);
  g_mutex_clear (&identity->lock);
  g_free (identity->cert_path);
  g_free (identity->key_path);
  g_free (identity->source);
  g_free (identity);
}

GTlsCertificate *
bs_tls_identity_get_certificate (BsTlsIdentity *identity)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&identity->lock);

  (void) locker;
  return g_object_ref (identity->certificate);
}

const char *
bs_tls_identity_get_source (BsTlsIdentity *identity)
{
  return identity->source;
}

typedef struct
{
  BsTlsReloadDone callback;
  gpointer user_data;
} Reload;

static void
reload_in_thread (GTask *task, gpointer source_object, gpointer task_data,
                  GCancellable *cancellable)
{
  BsTlsIdentity *identity = task_data;
  GError *error = NULL;
  GTlsCertificate *certificate = load (identity, &error);

  if (certificate == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, certificate, g_object_unref);
}

static void
reloaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree Reload *reload = user_data;
  BsTlsIdentity *identity = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  g_autoptr (GTlsCertificate) certificate = g_task_propagate_pointer (G_TASK (result), &error);

  if (certificate != NULL)
    {
      g_mutex_lock (&identity->lock);
      g_set_object (&identity->certificate, certificate);
      g_mutex_unlock (&identity->lock);
    }
  reload->callback (identity, error, reload->user_data);
}

void
bs_tls_identity_reload_async (BsTlsIdentity *identity, BsTlsReloadDone callback, gpointer user_data)
{
  Reload *reload = g_new0 (Reload, 1);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, reloaded, reload);

  reload->callback = callback;
  reload->user_data = user_data;
  g_task_set_task_data (task, bs_tls_identity_ref (identity),
                        (GDestroyNotify) bs_tls_identity_unref);
  g_task_run_in_thread (task, reload_in_thread);
}

GTlsDatabase *
bs_tls_database_new (const char *variable, const char *ca_file, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  GTlsDatabase *database;

  if (ca_file == NULL || *ca_file == '\0')
    {
      database = g_tls_backend_get_default_database (g_tls_backend_get_default ());
      if (database == NULL)
        g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "no TLS backend (glib-networking)");
      return database;
    }
  database = g_tls_file_database_new (ca_file, &local_error);
  if (database == NULL)
    g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "%s=\"%s\": %s", variable, ca_file,
                 local_error->message);
  return database;
}
