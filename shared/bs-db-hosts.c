/* bs-db-hosts.c: host=a,b,c becomes host=a,a,b,c hostaddr=10.0.0.1,10.0.0.2,…
 * so that libpq connects to the addresses we looked up, tries them in order
 * (with target_session_attrs choosing among them), and still checks each
 * name against its certificate. */
#include "bs-db-hosts.h"

#include <libpq-fe.h>
#include <string.h>

#define MAX_ADDRESSES 8 /* per name */

struct _BsDbHosts
{
  char **hosts;      /* the DSN's entries, "" for libpq's default */
  char **ports;      /* one per host, or NULL: the one port applies to all */
  char ***addresses; /* per entry: what its name resolved to, NULL: not yet or failed */
  guint n;           /* entries */
  guint pending;     /* lookups running */
  GError *error;     /* the first lookup that failed */
};

/* A name libpq would look up: not empty, not a socket directory, not an
 * IP address. */
static gboolean
is_name (const char *host)
{
  return host[0] != '\0' && host[0] != '/' && host[0] != '@' && !g_hostname_is_ip_address (host);
}

static const char *
option_value (const PQconninfoOption *options, const char *keyword)
{
  for (const PQconninfoOption *o = options; o->keyword != NULL; o++)
    if (g_str_equal (o->keyword, keyword) && o->val != NULL && o->val[0] != '\0')
      return o->val;
  return NULL;
}

BsDbHosts *
bs_db_hosts_new (const char *dsn)
{
  PQconninfoOption *options = PQconninfoParse (dsn, NULL);
  g_autoptr (BsDbHosts) hosts = NULL;
  const char *host, *port;
  gboolean any_name = FALSE;

  if (options == NULL)
    return NULL;
  host = option_value (options, "host");
  port = option_value (options, "port");
  if (option_value (options, "hostaddr") != NULL
      || (host == NULL && g_getenv ("PGHOSTADDR") != NULL))
    {
      PQconninfoFree (options);
      return NULL; /* the addresses are given: libpq looks nothing up */
    }
  hosts = g_new0 (BsDbHosts, 1);
  /* libpq splits these lists at every comma: no quoting */
  hosts->hosts = g_strsplit (host != NULL          ? host
                             : g_getenv ("PGHOST") ? g_getenv ("PGHOST")
                                                   : "",
                             ",", -1);
  hosts->n = g_strv_length (hosts->hosts);
  if (port == NULL)
    port = g_getenv ("PGPORT");
  if (port != NULL && strchr (port, ',') != NULL)
    hosts->ports = g_strsplit (port, ",", -1);
  PQconninfoFree (options);
  hosts->addresses = g_new0 (char **, MAX (hosts->n, 1));
  for (guint i = 0; i < hosts->n; i++)
    any_name = any_name || is_name (hosts->hosts[i]);
  /* ports that do not match the hosts: libpq refuses the DSN before any lookup */
  if (!any_name || (hosts->ports != NULL && g_strv_length (hosts->ports) != hosts->n))
    return NULL;
  return g_steal_pointer (&hosts);
}

void
bs_db_hosts_free (BsDbHosts *hosts)
{
  if (hosts == NULL)
    return;
  for (guint i = 0; i < hosts->n; i++)
    g_strfreev (hosts->addresses[i]);
  g_free (hosts->addresses);
  g_strfreev (hosts->hosts);
  g_strfreev (hosts->ports);
  g_clear_error (&hosts->error);
  g_free (hosts);
}

guint
bs_db_hosts_get_n (const BsDbHosts *hosts)
{
  return hosts->n;
}

const char *
bs_db_hosts_get_name (const BsDbHosts *hosts, guint index)
{
  g_return_val_if_fail (index < hosts->n, NULL);
  return is_name (hosts->hosts[index]) ? hosts->hosts[index] : NULL;
}

void
bs_db_hosts_set_addresses (BsDbHosts *hosts, guint index, const char *const *addresses)
{
  g_return_if_fail (index < hosts->n);
  g_strfreev (hosts->addresses[index]);
  hosts->addresses[index] = g_strdupv ((char **) addresses);
}

gboolean
bs_db_hosts_build (const BsDbHosts *hosts, guint first, char **host, char **hostaddr, char **port)
{
  g_autoptr (GPtrArray) h = g_ptr_array_new ();
  g_autoptr (GPtrArray) a = g_ptr_array_new ();
  g_autoptr (GPtrArray) p = g_ptr_array_new ();
  g_autoptr (GString) hs = g_string_new (NULL);
  g_autoptr (GString) as = g_string_new (NULL);
  g_autoptr (GString) ps = g_string_new (NULL);

  for (guint i = 0; i < hosts->n; i++)
    {
      const char *entry = hosts->hosts[i];
      const char *entry_port = hosts->ports != NULL ? hosts->ports[i] : NULL;

      if (!is_name (entry))
        {
          /* an address is its own hostaddr; a socket directory has none */
          g_ptr_array_add (h, (gpointer) entry);
          g_ptr_array_add (a, (gpointer) (g_hostname_is_ip_address (entry) ? entry : ""));
          g_ptr_array_add (p, (gpointer) entry_port);
          continue;
        }
      for (char **addr = hosts->addresses[i]; addr != NULL && *addr != NULL; addr++)
        {
          g_ptr_array_add (h, (gpointer) entry);
          g_ptr_array_add (a, *addr);
          g_ptr_array_add (p, (gpointer) entry_port);
        }
    }
  if (h->len == 0)
    return FALSE;
  for (guint k = 0; k < h->len; k++)
    {
      guint i = (first + k) % h->len;
      const char *sep = k > 0 ? "," : "";

      g_string_append_printf (hs, "%s%s", sep, (const char *) h->pdata[i]);
      g_string_append_printf (as, "%s%s", sep, (const char *) a->pdata[i]);
      g_string_append_printf (ps, "%s%s", sep,
                              p->pdata[i] != NULL ? (const char *) p->pdata[i] : "");
    }
  *host = g_string_free (g_steal_pointer (&hs), FALSE);
  *hostaddr = g_string_free (g_steal_pointer (&as), FALSE);
  *port = hosts->ports != NULL ? g_string_free (g_steal_pointer (&ps), FALSE) : NULL;
  return TRUE;
}

/* ---- looking the names up ------------------------------------------------ */

typedef struct
{
  GTask *task;
  guint index;
} Lookup;

static void
lookup_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  g_autoptr (GTask) task = lookup->task;
  guint index = lookup->index;
  BsDbHosts *hosts = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  GList *found = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);

  g_free (lookup);
  if (found != NULL)
    {
      g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
      guint n = 0;

      for (GList *l = found; l != NULL && n < MAX_ADDRESSES; l = l->next, n++)
        g_ptr_array_add (texts, g_inet_address_to_string (l->data));
      g_ptr_array_add (texts, NULL);
      bs_db_hosts_set_addresses (hosts, index, (const char *const *) texts->pdata);
      g_resolver_free_addresses (found);
    }
  else if (hosts->error == NULL)
    {
      hosts->error = g_steal_pointer (&error);
      g_prefix_error (&hosts->error, "resolving %s: ", hosts->hosts[index]);
    }
  if (--hosts->pending > 0)
    return;
  if (g_task_return_error_if_cancelled (task))
    return;
  for (guint i = 0; i < hosts->n; i++)
    if (!is_name (hosts->hosts[i]) || hosts->addresses[i] != NULL)
      {
        g_task_return_boolean (task, TRUE);
        return;
      }
  g_task_return_error (task, g_error_copy (hosts->error));
}

void
bs_db_hosts_resolve_async (BsDbHosts *hosts, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GResolver) resolver = g_resolver_get_default ();

  g_task_set_source_tag (task, bs_db_hosts_resolve_async);
  g_task_set_task_data (task, hosts, (GDestroyNotify) bs_db_hosts_free);
  for (guint i = 0; i < hosts->n; i++)
    if (is_name (hosts->hosts[i]))
      hosts->pending++;
  if (hosts->pending == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  for (guint i = 0; i < hosts->n; i++)
    if (is_name (hosts->hosts[i]))
      {
        Lookup *lookup = g_new0 (Lookup, 1);

        lookup->task = g_object_ref (task);
        lookup->index = i;
        g_resolver_lookup_by_name_async (resolver, hosts->hosts[i], cancellable, lookup_done,
                                         lookup);
      }
}

const BsDbHosts *
bs_db_hosts_resolve_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  return g_task_get_task_data (G_TASK (result));
}
