/* bs-http-linger.h: answer on a socket, then close it the way nginx's
 * lingering_close does. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Send @response (best effort, without blocking), shut our side for writing,
 * then read and discard what the client still sends until it closes, for at
 * most @linger_ms or 1 MiB, and close @socket (a reference is taken). Closing
 * at once while the client's request is still arriving would make its TCP
 * stack reset the connection and drop our answer unread. @done runs once the
 * socket is closed. */
void bs_http_linger_start (GSocket *socket, GBytes *response, guint linger_ms, GDestroyNotify done,
                           gpointer user_data);

G_END_DECLS
