/* bs-systemd.h: readiness, status, watchdog, stopping, socket activation. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Forward a state string to sd_notify (a no-op without NOTIFY_SOCKET). */
void bs_systemd_notify (const char *state);
void bs_systemd_notify_status (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* The single stream socket passed by systemd (LISTEN_FDS), or NULL when not
 * socket-activated. More than one socket, or a non-stream one, is an error. */
GSocket *bs_systemd_take_listen_socket (GError **error);

/* A health probe the watchdog runs before each ping; it calls @done with
 * TRUE when the service still works. */
typedef void (*BsWatchdogProbeDone) (gboolean healthy, gpointer done_data);
typedef void (*BsWatchdogProbe) (BsWatchdogProbeDone done, gpointer done_data, gpointer user_data);

typedef struct _BsWatchdog BsWatchdog;

/* Pings WATCHDOG=1 at half the interval systemd asks for (WATCHDOG_USEC),
 * each time only after @probe reports healthy. NULL when the watchdog is off. */
BsWatchdog *bs_watchdog_new (BsWatchdogProbe probe, gpointer user_data);
void bs_watchdog_free (BsWatchdog *watchdog);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsWatchdog, bs_watchdog_free)

G_END_DECLS
