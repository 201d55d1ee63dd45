/* bs-db-hosts.h: the hosts of a PostgreSQL connection string, looked up with
 * GResolver (in GIO's threads) so that libpq, given hostaddr=, never calls the
 * blocking getaddrinfo() on an event loop. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BsDbHosts BsDbHosts;

/* The host list of @dsn (host=a,b,c, or a URI with several hosts; when the
 * DSN names none, PGHOST), with its port list, when at least one entry is a
 * name that libpq would look up itself; else (only IP addresses, socket
 * directories, a hostaddr= given, an invalid DSN) NULL. */
BsDbHosts *bs_db_hosts_new (const char *dsn);
void bs_db_hosts_free (BsDbHosts *hosts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsDbHosts, bs_db_hosts_free)

guint bs_db_hosts_get_n (const BsDbHosts *hosts);
/* Entry @index's name to look up, or NULL when it needs none (an IP address,
 * a socket directory, or empty: libpq's default). */
const char *bs_db_hosts_get_name (const BsDbHosts *hosts, guint index);

/* The addresses entry @index's name resolved to, as text; NULL or empty: the
 * lookup failed, and the entry is left out. */
void bs_db_hosts_set_addresses (BsDbHosts *hosts, guint index, const char *const *addresses);

/* libpq's host=, hostaddr= and port= lists, aligned: one entry per address
 * (the name stays in host=, for TLS verify-full and the password file), the
 * others as they were, beginning at entry @first of that list (wrapping round,
 * so that a host that does not answer is not always tried first). *@port is
 * NULL when the DSN's one port (or none) applies to every entry. FALSE when no
 * entry is left (every lookup failed). */
gboolean bs_db_hosts_build (const BsDbHosts *hosts, guint first, char **host, char **hostaddr,
                            char **port);

/* Look every name up, concurrently. @hosts is the task's until it completes
 * (freed with it). */
void bs_db_hosts_resolve_async (BsDbHosts *hosts, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
/* The hosts with their addresses (borrowed: valid while @result is), or NULL
 * with the first lookup's error when none resolved. */
const BsDbHosts *bs_db_hosts_resolve_finish (GAsyncResult *result, GError **error);

G_END_DECLS
