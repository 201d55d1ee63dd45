/* bs-tls.h: the server's certificate and key (TLS_CERT_FILE and
 * TLS_KEY_FILE, or the systemd credentials tls-cert and tls-key), shared by
 * every event loop and replaced on reload: connections accepted afterwards
 * use the new one, open ones keep theirs. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BsTlsIdentity BsTlsIdentity;

#define BS_TLS_CERT_VARIABLE "TLS_CERT_FILE"
#define BS_TLS_KEY_VARIABLE "TLS_KEY_FILE"
#define BS_TLS_CERT_CREDENTIAL "tls-cert"
#define BS_TLS_KEY_CREDENTIAL "tls-key"

/* GnuTLS priorities for every TLS connection (G_TLS_GNUTLS_PRIORITY):
 * TLS 1.2 and 1.3 only. */
#define BS_TLS_GNUTLS_PRIORITY "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0"

/* NULL with no error when neither is configured (plain HTTP). One without
 * the other, a file that cannot be read or a certificate that does not
 * parse or match its key: BS_ERROR_CONFIG. Blocks (small local files):
 * call at start-up. */
BsTlsIdentity *bs_tls_identity_new_from_environment (GError **error);
BsTlsIdentity *bs_tls_identity_ref (BsTlsIdentity *identity);
void bs_tls_identity_unref (BsTlsIdentity *identity);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsTlsIdentity, bs_tls_identity_unref)

/* The certificate in use (a new reference); any thread. */
GTlsCertificate *bs_tls_identity_get_certificate (BsTlsIdentity *identity);
/* "TLS_CERT_FILE=/path" or "credential tls-cert", for messages. */
const char *bs_tls_identity_get_source (BsTlsIdentity *identity);

/* Read the files again off the main loop; on success the new certificate
 * is used from then on, on failure the one in use stays. @callback runs on
 * the caller's thread-default main context with the error, if any. */
typedef void (*BsTlsReloadDone) (BsTlsIdentity *identity, const GError *error, gpointer user_data);
void bs_tls_identity_reload_async (BsTlsIdentity *identity, BsTlsReloadDone callback,
                                   gpointer user_data);

/* A session for calling a server of ours over https: @ca_file (NULL: the
 * system's trust store) becomes its TLS database. BS_ERROR_CONFIG naming
 * @variable when the file does not hold a certificate. */
GTlsDatabase *bs_tls_database_new (const char *variable, const char *ca_file, GError **error);

G_END_DECLS
