/* test-http-output.c: a response's head waits for its body and both leave
 * in one send; a head without a body leaves on flush; an interim 100 is
 * not kept; a full socket never blocks a flush, and what it refused goes
 * first when it can. Over a socketpair, on a context of the test's own. */
#include "bs-http-output.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
#define HEAD_204 "HTTP/1.1 204 No Content\r\n\r\n"

typedef struct
{
  GMainContext *context;
  int peer;
  GSocket *socket;
  BsHttpOutput *output;
} Fixture;

static void
fixture_set_up (Fixture *fixture, gconstpointer data)
{
  int fds[2];
  g_autoptr (GError) error = NULL;

  fixture->context = g_main_context_new ();
  g_main_context_push_thread_default (fixture->context);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);
  fixture->peer = fds[1];
  fixture->socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  fixture->output = bs_http_output_new (fixture->socket);
}

static void
fixture_tear_down (Fixture *fixture, gconstpointer data)
{
  g_object_unref (fixture->output);
  g_object_unref (fixture->socket);
  close (fixture->peer);
  while (g_main_context_iteration (fixture->context, FALSE))
    ;
  g_main_context_pop_thread_default (fixture->context);
  g_main_context_unref (fixture->context);
}

static gssize
write_nonblocking (Fixture *fixture, const char *text, GError **error)
{
  return g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (fixture->output),
                                                     text, strlen (text), NULL, error);
}

/* What the peer can read now, as one recv(2): a message that came in two
 * sends would need two. */
static char *
peer_recv (Fixture *fixture)
{
  char buffer[4096];
  ssize_t n = recv (fixture->peer, buffer, sizeof buffer, 0);

  if (n < 0)
    {
      g_assert_cmpint (errno, ==, EAGAIN);
      return g_strdup ("");
    }
  return g_strndup (buffer, (gsize) n);
}

static void
test_head_waits_for_its_body (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  g_assert_cmpint (write_nonblocking (fixture, HEAD, &error), ==, strlen (HEAD));
  before = peer_recv (fixture);
  g_assert_cmpstr (before, ==, "");
  g_assert_cmpint (write_nonblocking (fixture, "{}", &error), ==, 2);
  g_assert_no_error (error);
  after = peer_recv (fixture);
  g_assert_cmpstr (after, ==, HEAD "{}");
}

static void
test_head_without_body_leaves_on_flush (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *received = NULL;

  g_assert_cmpint (write_nonblocking (fixture, HEAD_204, &error), ==, strlen (HEAD_204));
  g_assert_true (g_output_stream_flush (G_OUTPUT_STREAM (fixture->output), NULL, &error));
  g_assert_no_error (error);
  received = peer_recv (fixture);
  g_assert_cmpstr (received, ==, HEAD_204);
}

static void
test_interim_response_is_not_kept (Fixture *fixture, gconstpointer data)
{
  static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
  g_autoptr (GError) error = NULL;
  g_autofree char *received = NULL;

  g_assert_cmpint (write_nonblocking (fixture, interim, &error), ==, strlen (interim));
  received = peer_recv (fixture);
  g_assert_cmpstr (received, ==, interim);
}

static gsize
fill_socket (Fixture *fixture)
{
  char block[4096];
  gsize filled = 0;

  memset (block, 'f', sizeof block);
  for (;;)
    {
      ssize_t n = send (g_socket_get_fd (fixture->socket), block, sizeof block, MSG_DONTWAIT);

      if (n < 0)
        {
          g_assert_cmpint (errno, ==, EAGAIN);
          return filled;
        }
      filled += (gsize) n;
    }
}

/* What the peer reads until @expected bytes came, iterating the context
 * in between (the stream's own sending happens there). */
static GString *
drain_peer (Fixture *fixture, gsize expected)
{
  GString *received = g_string_new (NULL);

  for (guint rounds = 0; received->len < expected && rounds < 10000; rounds++)
    {
      char buffer[65536];
      ssize_t n = recv (fixture->peer, buffer, sizeof buffer, MSG_DONTWAIT);

      if (n > 0)
        g_string_append_len (received, buffer, n);
      g_main_context_iteration (fixture->context, FALSE);
    }
  return received;
}

static void
test_full_socket_never_blocks_a_flush (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gsize filled = fill_socket (fixture);
  g_autoptr (GString) received = NULL;

  g_assert_cmpint (write_nonblocking (fixture, HEAD_204, &error), ==, strlen (HEAD_204));
  /* returns at once, and the head goes when the peer reads */
  g_assert_true (g_output_stream_flush (G_OUTPUT_STREAM (fixture->output), NULL, &error));
  g_assert_no_error (error);
  received = drain_peer (fixture, filled + strlen (HEAD_204));
  g_assert_cmpuint (received->len, ==, filled + strlen (HEAD_204));
  g_assert_cmpstr (received->str + filled, ==, HEAD_204);
}

static void
test_full_socket_body_would_block (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gsize filled = fill_socket (fixture);
  g_autoptr (GString) received = NULL;
  gssize n;

  g_assert_cmpint (write_nonblocking (fixture, HEAD, &error), ==, strlen (HEAD));
  n = write_nonblocking (fixture, "{}", &error);
  g_assert_cmpint (n, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  received = drain_peer (fixture, filled);
  /* room again: the rest of the head, then the body, in order */
  g_assert_cmpint (write_nonblocking (fixture, "{}", &error), ==, 2);
  g_assert_no_error (error);
  {
    g_autoptr (GString) rest = drain_peer (fixture, filled + strlen (HEAD) + 2 - received->len);

    g_string_append_len (received, rest->str, (gssize) rest->len);
  }
  g_assert_cmpuint (received->len, ==, filled + strlen (HEAD) + 2);
  g_assert_cmpstr (received->str + filled, ==, HEAD "{}");
}

static void
test_take_unsent (Fixture *fixture, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) unsent = NULL;

  g_assert_null (bs_http_output_take_unsent (fixture->output));
  g_assert_cmpint (write_nonblocking (fixture, HEAD_204, &error), ==, strlen (HEAD_204));
  unsent = bs_http_output_take_unsent (fixture->output);
  g_assert_nonnull (unsent);
  g_assert_cmpmem (g_bytes_get_data (unsent, NULL), g_bytes_get_size (unsent), HEAD_204,
                   strlen (HEAD_204));
  g_assert_null (bs_http_output_take_unsent (fixture->output));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/bs/http-output/head-waits-for-its-body", Fixture, NULL, fixture_set_up,
              test_head_waits_for_its_body, fixture_tear_down);
  g_test_add ("/bs/http-output/head-without-body-leaves-on-flush", Fixture, NULL, fixture_set_up,
              test_head_without_body_leaves_on_flush, fixture_tear_down);
  g_test_add ("/bs/http-output/interim-response-is-not-kept", Fixture, NULL, fixture_set_up,
              test_interim_response_is_not_kept, fixture_tear_down);
  g_test_add ("/bs/http-output/full-socket-never-blocks-a-flush", Fixture, NULL, fixture_set_up,
              test_full_socket_never_blocks_a_flush, fixture_tear_down);
  g_test_add ("/bs/http-output/full-socket-body-would-block", Fixture, NULL, fixture_set_up,
              test_full_socket_body_would_block, fixture_tear_down);
  g_test_add ("/bs/http-output/take-unsent", Fixture, NULL, fixture_set_up, test_take_unsent,
              fixture_tear_down);
  return g_test_run ();
}
