/* bs-client-address.c: address sets as GInetAddressMasks. */
#include "bs-client-address.h"

#include "bs-error.h"

#include <string.h>

struct _BsAddressSet
{
  GPtrArray *masks; /* GInetAddressMask, owned */
};

BsAddressSet *
bs_address_set_new (const char *variable, const char *spec, GError **error)
{
  g_autoptr (BsAddressSet) set = g_atomic_rc_box_new0 (BsAddressSet);
  g_auto (GStrv) entries = g_strsplit_set (spec != NULL ? spec : "", ", \t", -1);

  set->masks = g_ptr_array_new_with_free_func (g_object_unref);
  for (gsize i = 0; entries[i] != NULL; i++)
    {
      GInetAddressMask *mask;

      if (entries[i][0] == '\0')
        continue;
      mask = g_inet_address_mask_new_from_string (entries[i], NULL);
      if (mask == NULL)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "%s: '%s' is not an address or address/length", variable, entries[i]);
          return NULL;
        }
      g_ptr_array_add (set->masks, mask);
    }
  return g_steal_pointer (&set);
}

BsAddressSet *
bs_address_set_ref (BsAddressSet *set)
{
  return g_atomic_rc_box_acquire (set);
}

static void
address_set_clear (gpointer data)
{
  BsAddressSet *set = data;

  g_ptr_array_unref (set->masks);
}

void
bs_address_set_unref (BsAddressSet *set)
{
  if (set != NULL)
    g_atomic_rc_box_release_full (set, address_set_clear);
}

/* ::ffff:a.b.c.d as a.b.c.d; anything else as it is (a new reference). */
static GInetAddress *
normalize (GInetAddress *address)
{
  static const guint8 v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  const guint8 *bytes;

  if (g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV6)
    return g_object_ref (address);
  bytes = g_inet_address_to_bytes (address);
  if (memcmp (bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) != 0)
    return g_object_ref (address);
  return g_inet_address_new_from_bytes (bytes + 12, G_SOCKET_FAMILY_IPV4);
}

static gboolean
contains_normalized (const BsAddressSet *set, GInetAddress *address)
{
  if (set == NULL)
    return FALSE;
  for (guint i = 0; i < set->masks->len; i++)
    if (g_inet_address_mask_matches (set->masks->pdata[i], address))
      return TRUE;
  return FALSE;
}

gboolean
bs_address_set_contains (const BsAddressSet *set, GInetAddress *address)
{
  g_autoptr (GInetAddress) normalized = normalize (address);

  return contains_normalized (set, normalized);
}

gboolean
bs_address_set_contains_string (const BsAddressSet *set, const char *address)
{
  g_autoptr (GInetAddress) parsed = g_inet_address_new_from_string (address);

  return parsed != NULL && bs_address_set_contains (set, parsed);
}

guint
bs_address_set_get_n (const BsAddressSet *set)
{
  return set != NULL ? set->masks->len : 0;
}

GInetAddress *
bs_client_address (const BsAddressSet *proxies, GInetAddress *peer, const char *x_forwarded_for)
{
  g_autoptr (GInetAddress) current = normalize (peer);
  g_auto (GStrv) hops = NULL;
  gint i;

  if (x_forwarded_for == NULL || !contains_normalized (proxies, current))
    return g_steal_pointer (&current);
  hops = g_strsplit (x_forwarded_for, ",", -1);
  for (i = (gint) g_strv_length (hops) - 1; i >= 0; i--)
    {
      g_autoptr (GInetAddress) hop = g_inet_address_new_from_string (g_strstrip (hops[i]));

      if (hop == NULL)
        break; /* not an address: whoever appended it is the client */
      g_object_unref (current);
      current = normalize (hop);
      if (!contains_normalized (proxies, current))
        break;
    }
  return g_steal_pointer (&current);
}
