/* test-redis.c: BsRedis against a real redis-server on a free loopback
 * port: replies, errors, a server that is missing, killed, frozen, or wants
 * a password, and freeing with commands in flight. */
#include "bs-redis.h"
#include "bs-test.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#define REDIS_SERVER "/usr/bin/redis-server"
#define WAIT_S 15

typedef struct
{
  GSubprocess *proc;
  guint16 port;
  char *dir;
} Server;

static guint16
free_port (void)
{
  g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (sock, any, TRUE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* A Redis that answers PING; @password may be NULL. */
static void
server_start (Server *server, const char *password)
{
  g_autofree char *port = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  if (server->port == 0)
    server->port = free_port ();
  if (server->dir == NULL)
    server->dir = g_dir_make_tmp ("bs-test-redis-XXXXXX", NULL);
  port = g_strdup_printf ("%u", server->port);
  g_ptr_array_add (argv, (gpointer) REDIS_SERVER);
  for (const char *const *arg
       = (const char *const[]){ "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--logfile", "", "--dir", server->dir, "--port", port, NULL };
       *arg != NULL; arg++)
    g_ptr_array_add (argv, (gpointer) *arg);
  if (password != NULL)
    {
      g_ptr_array_add (argv, (gpointer) "--requirepass");
      g_ptr_array_add (argv, (gpointer) password);
    }
  g_ptr_array_add (argv, NULL);
  server->proc = g_subprocess_newv ((const char *const *) argv->pdata,
                                    G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);
  g_assert_no_error (error);
  /* listening once a TCP connect succeeds */
  for (int i = 0; i < 500; i++)
    {
      g_autoptr (GSocketClient) client = g_socket_client_new ();
      g_autoptr (GSocketConnection) conn = NULL;

      /* no proxy lookup: libproxy is C++ and its exceptions abort under ASan */
      g_socket_client_set_enable_proxy (client, FALSE);
      conn = g_socket_client_connect_to_host (client, "127.0.0.1", server->port, NULL, NULL);

      if (conn != NULL)
        return;
      g_usleep (10000);
    }
  g_error ("redis-server did not start on port %u", server->port);
}

/* The state letter of /proc/PID/stat ('T' once stopped). */
static char
server_state (Server *server)
{
  g_autofree char *path
      = g_strdup_printf ("/proc/%s/stat", g_subprocess_get_identifier (server->proc));
  g_autofree char *stat = NULL;
  const char *paren;

  if (!g_file_get_contents (path, &stat, NULL, NULL) || (paren = strrchr (stat, ')')) == NULL)
    return '?';
  return paren[2];
}

/* kill() returns before the process has stopped: wait for it */
static void
server_signal (Server *server, int sig)
{
  g_subprocess_send_signal (server->proc, sig);
  for (int i = 0; sig == SIGSTOP && server_state (server) != 'T' && i < 500; i++)
    g_usleep (2000);
}

static void
server_stop (Server *server)
{
  if (server->proc == NULL)
    return;
  g_subprocess_send_signal (server->proc, SIGCONT);
  g_subprocess_force_exit (server->proc);
  g_subprocess_wait (server->proc, NULL, NULL);
  g_clear_object (&server->proc);
}

static void
server_destroy (Server *server)
{
  server_stop (server);
  if (server->dir != NULL)
    {
      g_autofree char *dump = g_build_filename (server->dir, "dump.rdb", NULL);

      g_unlink (dump);
      g_rmdir (server->dir);
    }
  g_free (server->dir);
}

/* ---- waiting on the main loop ------------------------------------------- */

static gboolean
deadline_cb (gpointer user_data)
{
  gboolean *expired = user_data;

  *expired = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterate the main loop until *@flag, or fail after WAIT_S. */
static void
wait_until (const gboolean *flag, const char *what)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add_seconds (WAIT_S, deadline_cb, &expired);

  while (!*flag && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (expired)
    bs_test_fail ("timed out waiting for %s", what);
  else
    g_source_remove (id);
}

typedef struct
{
  gboolean done;
  int type;
  char *str;
  long long integer;
  GError *error;
} Reply;

static void
reply_clear (Reply *reply)
{
  g_clear_pointer (&reply->str, g_free);
  g_clear_error (&reply->error);
  memset (reply, 0, sizeof *reply);
}

static void
reply_cb (BsRedis *redis, redisReply *r, const GError *error, gpointer user_data)
{
  Reply *reply = user_data;

  g_assert_false (reply->done);
  reply->done = TRUE;
  if (error != NULL)
    {
      g_assert_null (r);
      reply->error = g_error_copy (error);
      return;
    }
  reply->type = r->type;
  reply->integer = r->integer;
  if (bs_redis_reply_str (r) != NULL)
    reply->str = g_strdup (bs_redis_reply_str (r));
}

typedef struct
{
  int ups;
  int downs;
  gboolean up;
  gboolean down;
} States;

static void
state_cb (BsRedis *redis, gboolean connected, gpointer user_data)
{
  States *states = user_data;

  if (connected)
    states->ups++;
  else
    states->downs++;
  states->up = connected;
  states->down = !connected;
}

static BsRedis *
connect_to (Server *server, const char *host, const char *password, guint command_timeout_ms,
            States *states)
{
  BsRedisOptions options;
  BsRedis *redis;

  bs_redis_options_init_default (&options);
  options.host = host;
  options.port = server->port;
  options.password = password;
  options.name = "unit test";
  options.connect_timeout_ms = 500;
  options.command_timeout_ms = command_timeout_ms;
  redis = bs_redis_new (&options);
  bs_redis_set_state_func (redis, state_cb, states);
  bs_redis_start (redis);
  return redis;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_commands (void)
{
  Server server = { 0 };
  States states = { 0 };
  Reply reply = { 0 };
  g_autoptr (BsRedis) redis = NULL;

  server_start (&server, NULL);
  redis = connect_to (&server, "localhost", NULL, 2000, &states);
  g_assert_false (bs_redis_is_connected (redis));
  wait_until (&states.up, "the connection");
  g_assert_true (bs_redis_is_connected (redis));
  g_assert_cmpint (states.ups, ==, 1);

  /* binary-safe arguments */
  bs_redis_command_argv (redis, 0, 3, (const char *[]){ "SET", "k", "a\0b" },
                         (const size_t[]){ 3, 1, 3 }, reply_cb, &reply);
  wait_until (&reply.done, "SET");
  g_assert_no_error (reply.error);
  g_assert_cmpstr (reply.str, ==, "OK");
  reply_clear (&reply);

  bs_redis_command (redis, 0, reply_cb, &reply, "STRLEN", "k", NULL);
  wait_until (&reply.done, "STRLEN");
  g_assert_cmpint (reply.integer, ==, 3);
  reply_clear (&reply);

  /* an error reply is an error, and the connection stays */
  bs_redis_command (redis, 0, reply_cb, &reply, "INCR", "k", NULL);
  wait_until (&reply.done, "INCR");
  g_assert_error (reply.error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY);
  reply_clear (&reply);
  g_assert_true (bs_redis_is_connected (redis));

  g_clear_pointer (&redis, bs_redis_free);
  server_destroy (&server);
}

typedef struct
{
  gboolean done;
  char *id;
  GHashTable *fields;
  gboolean shape_rejected;
} Entry;

static void
xrange_cb (BsRedis *redis, redisReply *r, const GError *error, gpointer user_data)
{
  Entry *entry = user_data;

  g_assert_no_error ((GError *) error);
  g_assert_nonnull (r);
  g_assert_cmpint (r->type, ==, REDIS_REPLY_ARRAY);
  g_assert_cmpuint (r->elements, ==, 1);
  entry->fields = bs_redis_entry_fields (r->element[0], &entry->id);
  /* the list itself is not an entry */
  entry->shape_rejected = bs_redis_entry_fields (r, NULL) == NULL;
  entry->done = TRUE;
}

static void
test_stream_entry (void)
{
  Server server = { 0 };
  States states = { 0 };
  Reply reply = { 0 };
  Entry entry = { 0 };
  g_autoptr (BsRedis) redis = NULL;

  server_start (&server, NULL);
  redis = connect_to (&server, "127.0.0.1", NULL, 2000, &states);
  wait_until (&states.up, "the connection");
  bs_redis_command (redis, 0, reply_cb, &reply, "XADD", "s", "*", "order_id", "7", "price", "12.99",
                    NULL);
  wait_until (&reply.done, "XADD");
  g_assert_no_error (reply.error);
  bs_redis_command (redis, 0, xrange_cb, &entry, "XRANGE", "s", "-", "+", NULL);
  wait_until (&entry.done, "XRANGE");
  g_assert_nonnull (entry.fields);
  g_assert_cmpstr (entry.id, ==, reply.str);
  g_assert_cmpstr (g_hash_table_lookup (entry.fields, "order_id"), ==, "7");
  g_assert_cmpstr (g_hash_table_lookup (entry.fields, "price"), ==, "12.99");
  g_assert_true (entry.shape_rejected);
  g_hash_table_unref (entry.fields);
  g_free (entry.id);
  reply_clear (&reply);
  g_clear_pointer (&redis, bs_redis_free);
  server_destroy (&server);
}

/* No server yet: commands fail at once (never inside the call), the daemon
 * keeps trying, and connects when the server comes. */
static void
test_server_comes_later (void)
{
  Server server = { 0 };
  States states = { 0 };
  Reply reply = { 0 };
  g_autoptr (BsRedis) redis = NULL;

  server.port = free_port ();
  /* a name: resolved again before every attempt (each address tried) */
  redis = connect_to (&server, "localhost", NULL, 2000, &states);
  bs_redis_command (redis, 0, reply_cb, &reply, "PING", NULL);
  g_assert_false (reply.done);
  wait_until (&reply.done, "the failure");
  g_assert_error (reply.error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
  reply_clear (&reply);
  /* several rounds of failed attempts */
  for (int i = 0; i < 8; i++)
    {
      g_usleep (100000);
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }

  server_start (&server, NULL);
  wait_until (&states.up, "the connection");
  g_assert_cmpint (states.downs, ==, 0);
  g_clear_pointer (&redis, bs_redis_free);
  server_destroy (&server);
}

/* Killed: the command waiting fails, the state goes down; restarted on the
 * same port: back up. */
static void
test_server_killed (void)
{
  Server server = { 0 };
  States states = { 0 };
  Reply reply = { 0 };
  g_autoptr (BsRedis) redis = NULL;

  server_start (&server, NULL);
  redis = connect_to (&server, "127.0.0.1", NULL, 10000, &states);
  wait_until (&states.up, "the connection");
  bs_redis_command (redis, 5000, reply_cb, &reply, "BLPOP", "nothing", "5", NULL);
  g_usleep (100000);
  g_main_context_iteration (NULL, FALSE);
  server_signal (&server, SIGKILL);
  wait_until (&reply.done, "the failure");
  g_assert_error (reply.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  reply_clear (&reply);
  wait_until (&states.down, "the state change");
  g_assert_false (bs_redis_is_connected (redis));
  server_stop (&server);

  states.up = FALSE;
  server_start (&server, NULL);
  wait_until (&states.up, "the reconnection");
  g_assert_cmpint (states.ups, ==, 2);
  g_assert_cmpint (states.downs, ==, 1);
  bs_redis_command (redis, 0, reply_cb, &reply, "PING", NULL);
  wait_until (&reply.done, "PING");
  g_assert_cmpstr (reply.str, ==, "PONG");
  reply_clear (&reply);
  g_clear_pointer (&redis, bs_redis_free);
  server_destroy (&server);
}

/* Frozen: the command times out and the connection is dropped; a connect
 * is accepted by the kernel but the handshake never ends (connect timeout);
 * thawed: back up. */
static void
test_server_frozen (void)
{
  Server server = { 0 };
  States states = { 0 };
  Reply reply = { 0 };
  g_autoptr (BsRedis) redis = NULL;

  server_start (&server, NULL);
  redis = connect_to (&server, "127.0.0.1", NULL, 300, &states);
  wait_until (&states.up, "the connection");
  server_signal (&server, SIGSTOP);
  bs_redis_command (redis, 0, reply_cb, &reply, "PING", NULL);
  wait_until (&reply.done, "the timeout");
  g_assert_error (reply.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  reply_clear (&reply);
  g_assert_false (bs_redis_is_connected (redis));
  /* a few reconnects time out in the handshake meanwhile */
  for (int i = 0; i < 15; i++)
    {
      g_usleep (100000);
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }
  g_assert_false (bs_redis_is_connected (redis));
  states.up = FALSE;
  server_signal (&server, SIGCONT);
  wait_until (&states.up, "the reconnection");
  g_clear_pointer (&redis, bs_redis_free);
  server_destroy (&server);
}

static void
test_password (void)
{
  Server server = { 0 };
  States states = { 0 };
  States wrong_states = { 0 };
  States none_states = { 0 };
  g_autoptr (BsRedis) redis = NULL;
  g_autoptr (BsRedis) wrong = NULL;
  g_autoptr (BsRedis) none = NULL;

  server_start (&server, "s3cret");
  wrong = connect_to (&server, "127.0.0.1", "wrong", 2000, &wrong_states);
  none = connect_to (&server, "127.0.0.1", NULL, 2000, &none_states);
  redis = connect_to (&server, "127.0.0.1", "s3cret", 2000, &states);
  wait_until (&states.up, "the connection");
  for (int i = 0; i < 10; i++)
    {
      g_usleep (50000);
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }
  g_assert_cmpint (wrong_states.ups, ==, 0);
  g_assert_cmpint (none_states.ups, ==, 0);
  g_assert_false (bs_redis_is_connected (wrong));
  g_clear_pointer (&wrong, bs_redis_free);
  g_clear_pointer (&none, bs_redis_free);
  g_clear_pointer (&redis, bs_redis_free);
  server_destroy (&server);
}

static void
free_from_callback_cb (BsRedis *redis, redisReply *r, const GError *error, gpointer user_data)
{
  BsRedis **slot = user_data;

  g_assert_true (redis == *slot);
  g_clear_pointer (slot, bs_redis_free);
}

/* Freeing answers every waiting command with CANCELLED, also when freed
 * from inside one of its own reply callbacks. */
static void
test_free_with_commands (void)
{
  Server server = { 0 };
  States states = { 0 };
  Reply blocked = { 0 };
  Reply queued = { 0 };
  BsRedis *redis;

  server_start (&server, NULL);
  redis = connect_to (&server, "127.0.0.1", NULL, 10000, &states);
  wait_until (&states.up, "the connection");
  bs_redis_command (redis, 5000, reply_cb, &blocked, "BLPOP", "nothing", "5", NULL);
  bs_redis_command (redis, 0, reply_cb, &queued, "PING", NULL);
  g_main_context_iteration (NULL, FALSE);
  bs_redis_free (redis);
  g_assert_true (blocked.done);
  g_assert_true (queued.done);
  g_assert_error (blocked.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_error (queued.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  reply_clear (&blocked);
  reply_clear (&queued);

  states.up = FALSE;
  redis = connect_to (&server, "127.0.0.1", NULL, 10000, &states);
  wait_until (&states.up, "the connection");
  bs_redis_command (redis, 0, free_from_callback_cb, &redis, "PING", NULL);
  bs_redis_command (redis, 0, reply_cb, &queued, "PING", NULL);
  wait_until (&queued.done, "the second command");
  g_assert_null (redis);
  g_assert_error (queued.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  reply_clear (&queued);
  /* let hiredis finish its deferred free */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  server_destroy (&server);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  /* losing the server is what these tests do: its warnings are expected */
  g_log_set_always_fatal (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
  if (!g_file_test (REDIS_SERVER, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_printerr ("%s missing: apt-get install redis-server\n", REDIS_SERVER);
      return 1;
    }
  g_test_add_func ("/redis/commands", test_commands);
  g_test_add_func ("/redis/stream-entry", test_stream_entry);
  g_test_add_func ("/redis/server-comes-later", test_server_comes_later);
  g_test_add_func ("/redis/server-killed", test_server_killed);
  g_test_add_func ("/redis/server-frozen", test_server_frozen);
  g_test_add_func ("/redis/password", test_password);
  g_test_add_func ("/redis/free-with-commands", test_free_with_commands);
  return g_test_run ();
}
