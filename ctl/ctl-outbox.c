/* ctl-outbox.c: `outbox` (the events waiting in the orders database for
 * Redis) and `idempotency purge --older-than DURATION`. Both talk to the
 * orders database as the DSN in orders.env says: with the packaged peer
 * authentication, run them as the service's user
 * (sudo -u bookstore-orders bookstorectl outbox). */
#include "ctl-outbox.h"

#include "ctl-clients.h"

#include "bs-error.h"

#include <stdio.h>
#include <string.h>

/* the statement Orders' metrics use (orders-store.c, ORDERS_SQL_OUTBOX_STATS) */
#define OUTBOX_STATS_SQL                                                                           \
  "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL), "                                   \
  "COALESCE((SELECT extract(epoch FROM now() - created_at)::bigint FROM outbox "                   \
  "WHERE sent_at IS NULL ORDER BY id LIMIT 1), 0)"

/* Orders' hourly purge (orders-store.c, ORDERS_SQL_PURGE_KEYS) with the age
 * in seconds instead of hours; an order keeps its row, its key goes NULL */
#define PURGE_KEYS_SQL                                                                             \
  "WITH d AS (DELETE FROM idempotency_keys "                                                       \
  "WHERE created_at < now() - make_interval(secs => $1::bigint) RETURNING 1) "                     \
  "SELECT count(*) FROM d"

gboolean
ctl_outbox_read (Ctl *ctl, gint64 *pending, gint64 *oldest_seconds, GError **error)
{
  g_autoptr (PGconn) conn = ctl_pg_connect (ctl, CTL_SERVICE_ORDERS, error);
  g_autoptr (PGresult) result = NULL;

  if (conn == NULL)
    return FALSE;
  result = ctl_pg_exec (ctl, conn, OUTBOX_STATS_SQL, 0, NULL, error);
  if (result == NULL)
    return FALSE;
  *pending = g_ascii_strtoll (PQgetvalue (result, 0, 0), NULL, 10);
  *oldest_seconds = g_ascii_strtoll (PQgetvalue (result, 0, 1), NULL, 10);
  return TRUE;
}

static int
db_error_status (const GError *error)
{
  return g_error_matches (error, BS_ERROR, BS_ERROR_UNAVAILABLE)
                 || g_error_matches (error, BS_ERROR, BS_ERROR_TIMEOUT)
             ? CTL_EXIT_UNAVAILABLE
             : CTL_EXIT_UNHEALTHY;
}

int
ctl_outbox (Ctl *ctl, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  gint64 pending = 0, oldest = 0;

  if (argc > 1)
    return ctl_usage_error ("outbox takes no arguments");
  if (!ctl_outbox_read (ctl, &pending, &oldest, &error))
    return ctl_fail (ctl, db_error_status (error), "outbox: %s", error->message);
  if (ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "pending");
      json_builder_add_int_value (b, pending);
      json_builder_set_member_name (b, "oldest_pending_seconds");
      json_builder_add_int_value (b, oldest);
      json_builder_end_object (b);
      ctl_print_json (json_builder_get_root (b));
    }
  else
    {
      g_autofree char *age = ctl_format_duration (oldest);

      if (pending == 0)
        printf ("outbox: empty (every order event is in Redis)\n");
      else
        printf ("outbox: %" G_GINT64_FORMAT " event%s waiting, the oldest for %s\n", pending,
                pending == 1 ? "" : "s", age);
    }
  return CTL_EXIT_OK;
}

/* "90s", "30m", "24h", "7d", "2w", or plain seconds; at most 10 years */
static gboolean
parse_duration (const char *text, gint64 *seconds)
{
  char *end = NULL;
  guint64 n;
  gint64 unit = 1;

  if (!g_ascii_isdigit (*text))
    return FALSE;
  n = g_ascii_strtoull (text, &end, 10);
  if (strcmp (end, "") == 0 || strcmp (end, "s") == 0)
    unit = 1;
  else if (strcmp (end, "m") == 0 || strcmp (end, "min") == 0)
    unit = 60;
  else if (strcmp (end, "h") == 0)
    unit = 3600;
  else if (strcmp (end, "d") == 0)
    unit = 86400;
  else if (strcmp (end, "w") == 0)
    unit = 7 * 86400;
  else
    return FALSE;
  if (n > (guint64) 10 * 366 * 86400 / (guint64) unit)
    return FALSE;
  *seconds = (gint64) n * unit;
  return TRUE;
}

int
ctl_idempotency (Ctl *ctl, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PGconn) conn = NULL;
  g_autoptr (PGresult) result = NULL;
  const char *older_than = NULL;
  gint64 seconds = 0;
  char param[32];
  gint64 deleted;

  if (argc < 2 || strcmp (argv[1], "purge") != 0)
    return ctl_usage_error ("usage: idempotency purge --older-than DURATION");
  for (int i = 2; i < argc; i++)
    if (strcmp (argv[i], "--older-than") == 0 && i + 1 < argc)
      older_than = argv[++i];
    else if (g_str_has_prefix (argv[i], "--older-than="))
      older_than = argv[i] + strlen ("--older-than=");
    else
      return ctl_usage_error ("idempotency purge: unexpected argument '%s'", argv[i]);
  if (older_than == NULL)
    return ctl_usage_error ("idempotency purge needs --older-than DURATION (e.g. 24h, 7d)");
  if (!parse_duration (older_than, &seconds))
    return ctl_usage_error ("--older-than: '%s' is not a duration such as 90s, 30m, 24h, 7d",
                            older_than);
  g_snprintf (param, sizeof param, "%" G_GINT64_FORMAT, seconds);
  conn = ctl_pg_connect (ctl, CTL_SERVICE_ORDERS, &error);
  if (conn != NULL)
    result = ctl_pg_exec (ctl, conn, PURGE_KEYS_SQL, 1, (const char *const[]){ param }, &error);
  if (result == NULL)
    return ctl_fail (ctl, db_error_status (error), "idempotency purge: %s", error->message);
  deleted = g_ascii_strtoll (PQgetvalue (result, 0, 0), NULL, 10);
  if (ctl->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "deleted");
      json_builder_add_int_value (b, deleted);
      json_builder_set_member_name (b, "older_than_seconds");
      json_builder_add_int_value (b, seconds);
      json_builder_end_object (b);
      ctl_print_json (json_builder_get_root (b));
    }
  else
    printf ("deleted %" G_GINT64_FORMAT " idempotency key%s older than %s\n", deleted,
            deleted == 1 ? "" : "s", older_than);
  return CTL_EXIT_OK;
}
