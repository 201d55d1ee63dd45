/* bs-redis-address.c: "host:port" and the REDIS_SENTINELS list. */
#include "bs-redis.h"

#include "bs-error.h"

#include <string.h>

/* A port of 1..65535, digits only. */
static gboolean
parse_port (const char *text, guint16 *port)
{
  guint64 value = 0;

  if (*text == '\0' || strlen (text) > 5)
    return FALSE;
  for (const char *c = text; *c != '\0'; c++)
    if (!g_ascii_isdigit (*c))
      return FALSE;
  value = g_ascii_strtoull (text, NULL, 10);
  if (value == 0 || value > 65535)
    return FALSE;
  *port = (guint16) value;
  return TRUE;
}

/* A host name or address: visible ASCII, no separators of the list. */
static gboolean
valid_host (const char *host)
{
  if (*host == '\0' || strlen (host) > 253)
    return FALSE;
  for (const char *c = host; *c != '\0'; c++)
    if (*c < 0x21 || *c > 0x7e || *c == ',' || *c == '[' || *c == ']' || *c == '/')
      return FALSE;
  return TRUE;
}

gboolean
bs_redis_parse_address (const char *text, guint16 default_port, char **host, guint16 *port,
                        GError **error)
{
  g_autofree char *name = NULL;
  const char *port_text = NULL;
  guint16 value = default_port;

  if (text[0] == '[')
    {
      const char *end = strchr (text, ']');

      if (end == NULL || (end[1] != '\0' && end[1] != ':'))
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "\"%s\": an IPv6 address is written [address]:port", text);
          return FALSE;
        }
      name = g_strndup (text + 1, end - text - 1);
      if (!g_hostname_is_ip_address (name) || strchr (name, ':') == NULL)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "\"%s\": not an IPv6 address in [ ]",
                       text);
          return FALSE;
        }
      if (end[1] == ':')
        port_text = end + 2;
    }
  else
    {
      const char *colon = strchr (text, ':');

      if (colon != NULL && strchr (colon + 1, ':') != NULL)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "\"%s\": write an IPv6 address in brackets, [address]:port", text);
          return FALSE;
        }
      name = colon != NULL ? g_strndup (text, colon - text) : g_strdup (text);
      if (colon != NULL)
        port_text = colon + 1;
    }
  if (port_text != NULL && !parse_port (port_text, &value))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "\"%s\": the port must be 1 to 65535", text);
      return FALSE;
    }
  if (!valid_host (name))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "\"%s\": not a host name or address", text);
      return FALSE;
    }
  *host = g_steal_pointer (&name);
  *port = value;
  return TRUE;
}

GStrv
bs_redis_parse_sentinels (const char *list, GError **error)
{
  g_auto (GStrv) items = g_strsplit (list, ",", -1);
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  guint n = 0;

  for (guint i = 0; items[i] != NULL; i++)
    {
      g_autofree char *host = NULL;
      char *item = g_strstrip (items[i]);
      guint16 port;

      if (*item == '\0')
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                       "an empty entry in the list (host:port,host:port,...)");
          return NULL;
        }
      if (!bs_redis_parse_address (item, BS_REDIS_SENTINEL_PORT, &host, &port, error))
        return NULL;
      if (n == BS_REDIS_MAX_SENTINELS)
        {
          g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "more than %d sentinels",
                       BS_REDIS_MAX_SENTINELS);
          return NULL;
        }
      g_strv_builder_add (out, item);
      n++;
    }
  return g_strv_builder_end (out);
}
