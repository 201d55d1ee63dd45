/* bs-client-address.h: who the client is. The peer of the connection,
 * unless that peer is one of the proxies the operator trusts
 * (TRUSTED_PROXIES): then X-Forwarded-For names the client, read from the
 * right past every trusted hop, as HAProxy and nginx append to it. A header
 * from anyone else is ignored: clients cannot pick their own address. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A set of addresses and networks (trusted proxies, clients exempt from a
 * limit). Read-only once made: the event loops share one, by reference. */
typedef struct _BsAddressSet BsAddressSet;

/* @spec: addresses and CIDR masks separated by commas or blanks
 * ("127.0.0.1, 10.0.0.0/8, fd00::/8"); NULL or blank: the empty set. A bad
 * entry is a BS_ERROR_CONFIG naming @variable and the entry. */
BsAddressSet *bs_address_set_new (const char *variable, const char *spec, GError **error);
BsAddressSet *bs_address_set_ref (BsAddressSet *set);
void bs_address_set_unref (BsAddressSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsAddressSet, bs_address_set_unref)

/* @set may be NULL (empty). IPv4 seen through a dual-stack socket
 * (::ffff:a.b.c.d) counts as IPv4. */
gboolean bs_address_set_contains (const BsAddressSet *set, GInetAddress *address);
gboolean bs_address_set_contains_string (const BsAddressSet *set, const char *address);
guint bs_address_set_get_n (const BsAddressSet *set);

/* The client's address (IPv4 as IPv4 even through a dual-stack socket).
 * @proxies may be NULL (trust no one); @x_forwarded_for may be NULL. An
 * entry that is not an address stops the walk: the hop that appended it is
 * taken as the client. */
GInetAddress *bs_client_address (const BsAddressSet *proxies, GInetAddress *peer,
                                 const char *x_forwarded_for);

G_END_DECLS
