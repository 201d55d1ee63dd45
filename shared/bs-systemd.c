/* bs-systemd.c: the sd-daemon protocol, driven from the GLib main loop. */
#include "bs-systemd.h"

#include "bs-error.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

void
bs_systemd_notify (const char *state)
{
  /* never unset the environment: later WATCHDOG=1 pings would be dropped */
  sd_notify (0, state);
}

void
bs_systemd_notify_status (const char *format, ...)
{
  va_list args;
  g_autofree char *status = NULL;
  g_autofree char *state = NULL;

  va_start (args, format);
  status = g_strdup_vprintf (format, args);
  va_end (args);
  state = g_strdup_printf ("STATUS=%s", status);
  sd_notify (0, state);
}

GSocket *
bs_systemd_take_listen_socket (GError **error)
{
  int n = sd_listen_fds (1);
  int fd = SD_LISTEN_FDS_START;

  if (n == 0)
    return NULL;
  if (n < 0)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "LISTEN_FDS: %s", g_strerror (-n));
      return NULL;
    }
  if (n > 1)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG, "LISTEN_FDS=%d: expected exactly one socket",
                   n);
      return NULL;
    }
  if (sd_is_socket (fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_CONFIG,
                           "the socket passed by systemd is not a listening stream socket");
      return NULL;
    }
  return g_socket_new_from_fd (fd, error);
}

/* One outstanding probe; the watchdog forgets it (watchdog = NULL) when freed
 * first, so a late answer is ignored. */
typedef struct
{
  BsWatchdog *watchdog;
} ProbeToken;

struct _BsWatchdog
{
  BsWatchdogProbe probe;
  gpointer user_data;
  guint timer_id;
  ProbeToken *pending;
};

static void
probe_done (gboolean healthy, gpointer done_data)
{
  ProbeToken *token = done_data;
  BsWatchdog *watchdog = token->watchdog;

  if (watchdog != NULL)
    {
      watchdog->pending = NULL;
      if (healthy)
        sd_notify (0, "WATCHDOG=1");
      else
        g_warning ("watchdog self-check failed; withholding WATCHDOG=1");
    }
  g_free (token);
}

static gboolean
watchdog_tick (gpointer user_data)
{
  BsWatchdog *watchdog = user_data;

  if (watchdog->pending != NULL)
    return G_SOURCE_CONTINUE; /* the previous probe is still out: no ping */
  watchdog->pending = g_new0 (ProbeToken, 1);
  watchdog->pending->watchdog = watchdog;
  watchdog->probe (probe_done, watchdog->pending, watchdog->user_data);
  return G_SOURCE_CONTINUE;
}

BsWatchdog *
bs_watchdog_new (BsWatchdogProbe probe, gpointer user_data)
{
  BsWatchdog *watchdog;
  guint64 usec = 0;

  if (sd_watchdog_enabled (0, &usec) <= 0 || usec == 0)
    return NULL;
  watchdog = g_new0 (BsWatchdog, 1);
  watchdog->probe = probe;
  watchdog->user_data = user_data;
  watchdog->timer_id = g_timeout_add (MAX (usec / 2000, 1), watchdog_tick, watchdog);
  sd_notify (0, "WATCHDOG=1");
  return watchdog;
}

void
bs_watchdog_free (BsWatchdog *watchdog)
{
  if (watchdog == NULL)
    return;
  g_clear_handle_id (&watchdog->timer_id, g_source_remove);
  if (watchdog->pending != NULL)
    watchdog->pending->watchdog = NULL;
  g_free (watchdog);
}
