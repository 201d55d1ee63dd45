/* libsoup-floor.c: the floor under bookstore-books in bench/peers.sh.
 *
 * A bare libsoup-3 server used the default way: one thread, one
 * GMainLoop, one handler for every path that answers 200 with a constant
 * JSON body (by default, a book as bookstore-books writes it; FLOOR_BODY_FILE
 * names a file to answer instead, which bench/peers.sh fills with a real
 * answer of bookstore-books, so that the sizes match). No database, no
 * logging, no metrics: what is left is libsoup's own cost per request, the
 * least a libsoup daemon can spend.
 *
 *   gcc -O2 -o /tmp/libsoup-floor bench/peers/libsoup-floor.c \
 *     $(pkg-config --cflags --libs libsoup-3.0)
 *   PORT=8080 /tmp/libsoup-floor
 *
 * Environment: PORT (required), BIND_ADDRESS (default 127.0.0.1),
 * FLOOR_BODY_FILE. Stops on SIGTERM or SIGINT. */
#include <glib-unix.h>
#include <libsoup/soup.h>
#include <stdlib.h>

static const char default_body[]
    = "{\"id\":5000,\"title\":\"Book 5000\",\"author\":\"Author 15\","
      "\"description\":\"Description of book 5000\",\"price\":\"50.00\",\"active\":true,"
      "\"created_at\":\"2026-11-25T17:58:44.662393Z\","
      "\"updated_at\":\"2026-11-25T17:58:44.662393Z\"}";

static void
handle (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
        gpointer user_data)
{
  GBytes *body = user_data;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
                                    g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

static gboolean
quit (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (void)
{
  const char *port = g_getenv ("PORT");
  const char *address = g_getenv ("BIND_ADDRESS");
  const char *body_file = g_getenv ("FLOOR_BODY_FILE");
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = NULL;
  g_autoptr (SoupServer) server = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) socket_address = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  char *contents = NULL;
  gsize length = 0;
  guint64 port_number = 0;

  if (port == NULL || !g_ascii_string_to_unsigned (port, 10, 1, 65535, &port_number, NULL))
    {
      g_printerr ("libsoup-floor: PORT must be 1..65535\n");
      return EXIT_FAILURE;
    }
  if (body_file != NULL)
    {
      if (!g_file_get_contents (body_file, &contents, &length, &error))
        {
          g_printerr ("libsoup-floor: %s\n", error->message);
          return EXIT_FAILURE;
        }
      body = g_bytes_new_take (contents, length);
    }
  else
    body = g_bytes_new_static (default_body, sizeof default_body - 1);

  inet = g_inet_address_new_from_string (address != NULL ? address : "127.0.0.1");
  if (inet == NULL)
    {
      g_printerr ("libsoup-floor: BIND_ADDRESS is not an IP address\n");
      return EXIT_FAILURE;
    }
  socket_address = g_inet_socket_address_new (inet, (guint16) port_number);
  server = soup_server_new (NULL, NULL);
  soup_server_add_handler (server, NULL, handle, body, NULL);
  if (!soup_server_listen (server, socket_address, 0, &error))
    {
      g_printerr ("libsoup-floor: %s\n", error->message);
      return EXIT_FAILURE;
    }
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, quit, loop);
  g_unix_signal_add (SIGINT, quit, loop);
  g_main_loop_run (loop);
  return EXIT_SUCCESS;
}
