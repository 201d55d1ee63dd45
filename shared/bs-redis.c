/* bs-redis.c: one Redis connection kept up on the main loop.
 *
 * Lifetimes: hiredis calls each command's callback exactly once (with the
 * reply, or NULL when the context goes away), so a Command is freed there.
 * The context is only ever freed by hiredis itself or by drop_connection(),
 * which runs from our own timers and idles, never from inside a hiredis
 * callback (hiredis 0.14 would then go on using the freed context). */
#include "bs-redis.h"

#include "bs-redis-source.h"

#include <hiredis/async.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* with sentinels: asking again is cheap, and a failover wants a quick look */
#define BACKOFF_MAX_SENTINEL_MS 1000
#define TICK_MS 100
/* while connected through sentinels: has the master changed? */
#define SENTINEL_POLL_MS 1000

G_DEFINE_QUARK (bs - redis - error - quark, bs_redis_error)

typedef enum
{
  STATE_IDLE,
  STATE_DISCOVERING, /* asking a sentinel where the master is */
  STATE_RESOLVING,
  STATE_CONNECTING, /* socket connect and the AUTH/SETNAME/PING handshake */
  STATE_CONNECTED,
  STATE_WAITING, /* for the next attempt */
} State;

typedef struct _Command Command;

struct _BsRedis
{
  char *host;
  guint16 port;
  char *username;
  char *password;
  char *name;
  guint connect_timeout_ms;
  guint command_timeout_ms;

  State state;
  redisAsyncContext *ac;
  GStrv addresses; /* @host resolved, tried in order */
  guint address_index;
  GQueue sent;    /* Command, in the order Redis will answer */
  GQueue failing; /* Command, failed before sending; answered from an idle */
  guint fail_idle_id;
  gint64 connect_deadline;
  guint tick_id;
  guint retry_id;
  guint drop_idle_id;
  char *drop_reason;
  guint backoff_ms;
  GCancellable *resolve_cancellable;
  gboolean outage_logged; /* one line per outage, not one per attempt... */
  gboolean refused;       /* ...but a refused handshake (WRONGPASS, NOPERM) says why */
  char *refusal_logged;   /* each time the refusal changes */
  gboolean ever_connected;

  BsRedisStateFunc state_func;
  gpointer state_data;

  /* With sentinels: @host and @port are the master they named last. */
  char *master_name;
  BsRedis *sentinel;        /* the connection to one sentinel at a time */
  gboolean discovering;     /* SENTINEL get-master-addr-by-name in flight */
  gint64 next_poll;         /* while connected: ask the sentinel again then */
  char *master;             /* "host:port" of the master last found */
  BsMetricFamily *switches; /* counted on each change of @master */
  /* In that sentinel connection: every sentinel, "host:port", tried in turn. */
  GStrv rotation;
  guint rotation_index;
};

struct _Command
{
  BsRedis *redis; /* NULL once the BsRedis is gone: just free */
  BsRedisReplyFunc func;
  gpointer user_data;
  gint64 deadline;
  gboolean timed_out;
  GList link; /* in redis->sent or redis->failing */
};

static void connect_now (BsRedis *redis);
static void schedule_retry (BsRedis *redis);
static void attempt_host (BsRedis *redis);
static void drop_connection_later (BsRedis *redis, const char *why);
static void sentinel_state_changed (BsRedis *sentinel, gboolean connected, gpointer user_data);

/* The sentinel connection: aim at the @index-th sentinel. */
static void
rotation_select (BsRedis *redis, guint index)
{
  const char *entry;

  redis->rotation_index = index % g_strv_length (redis->rotation);
  entry = redis->rotation[redis->rotation_index];
  g_clear_pointer (&redis->host, g_free);
  if (!bs_redis_parse_address (entry, BS_REDIS_SENTINEL_PORT, &redis->host, &redis->port, NULL))
    {
      /* not checked by bs_redis_parse_sentinels(): the connect says why */
      redis->host = g_strdup (entry);
      redis->port = BS_REDIS_SENTINEL_PORT;
    }
}

void
bs_redis_options_init_default (BsRedisOptions *options)
{
  memset (options, 0, sizeof *options);
  options->host = "127.0.0.1";
  options->port = 6379;
  options->name = "redis";
  options->connect_timeout_ms = 2000;
  options->command_timeout_ms = 5000;
}

BsRedis *
bs_redis_new (const BsRedisOptions *options)
{
  BsRedis *redis = g_new0 (BsRedis, 1);

  redis->host = g_strdup (options->host != NULL ? options->host : "127.0.0.1");
  redis->port = options->port != 0 ? options->port : 6379;
  redis->username = options->username != NULL && options->username[0] != '\0'
                        ? g_strdup (options->username)
                        : NULL;
  redis->password = options->password != NULL && options->password[0] != '\0'
                        ? g_strdup (options->password)
                        : NULL;
  redis->name = g_strdup (options->name != NULL ? options->name : "redis");
  redis->connect_timeout_ms = options->connect_timeout_ms != 0 ? options->connect_timeout_ms : 2000;
  redis->command_timeout_ms = options->command_timeout_ms != 0 ? options->command_timeout_ms : 5000;
  redis->backoff_ms = BACKOFF_MIN_MS;
  g_queue_init (&redis->sent);
  g_queue_init (&redis->failing);
  if (options->sentinels != NULL && options->sentinels[0] != NULL && options->master_name != NULL)
    {
      BsRedisOptions sentinel = *options;
      g_autofree char *name = g_strdup_printf ("%s sentinel", redis->name);

      sentinel.name = name;
      sentinel.sentinels = NULL;
      sentinel.master_name = NULL;
      sentinel.username = NULL; /* no login (docs/configuration.md, "Redis with Sentinel") */
      sentinel.password = NULL;
      sentinel.host = NULL;
      sentinel.port = 0;
      redis->sentinel = bs_redis_new (&sentinel);
      redis->sentinel->rotation = g_strdupv ((GStrv) options->sentinels);
      rotation_select (redis->sentinel, 0);
      bs_redis_set_state_func (redis->sentinel, sentinel_state_changed, redis);
      redis->master_name = g_strdup (options->master_name);
      redis->switches = options->master_switches;
      if (redis->switches != NULL)
        bs_metric_init (redis->switches, (const char *const[]){ redis->name, NULL });
      g_clear_pointer (&redis->host, g_free); /* not known until a sentinel says */
    }
  return redis;
}

char *
bs_redis_dup_address (BsRedis *redis)
{
  if (redis->host == NULL)
    return NULL;
  return g_strdup_printf (strchr (redis->host, ':') != NULL ? "[%s]:%u" : "%s:%u", redis->host,
                          redis->port);
}

const char *
bs_redis_get_name (BsRedis *redis)
{
  return redis->name;
}

gboolean
bs_redis_is_connected (BsRedis *redis)
{
  return redis->state == STATE_CONNECTED;
}

void
bs_redis_set_state_func (BsRedis *redis, BsRedisStateFunc func, gpointer user_data)
{
  redis->state_func = func;
  redis->state_data = user_data;
}

/* ---- answering commands ----------------------------------------------------- */

static void
command_answer (Command *cmd, redisReply *reply, const GError *error)
{
  if (cmd->redis != NULL && cmd->func != NULL)
    cmd->func (cmd->redis, reply, error, cmd->user_data);
}

static void
reply_cb (redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
  Command *cmd = privdata;
  redisReply *reply = reply_ptr;
  BsRedis *redis = cmd->redis;
  g_autoptr (GError) error = NULL;

  if (redis != NULL)
    g_queue_unlink (&redis->sent, &cmd->link);
  if (reply == NULL)
    {
      if (cmd->timed_out)
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "Redis (%s) did not answer in time",
                             redis != NULL ? redis->name : "?");
      else
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                             "connection to Redis (%s) lost", redis != NULL ? redis->name : "?");
      command_answer (cmd, NULL, error);
    }
  else if (reply->type == REDIS_REPLY_ERROR)
    {
      error = g_error_new (BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY, "%s", reply->str);
      /* made a replica under us (a switchover): find the new master; with
       * no sentinels there is nowhere else to go */
      if (redis != NULL && redis->master_name != NULL
          && (g_str_has_prefix (reply->str, "READONLY ")
              || g_str_has_prefix (reply->str, "UNBLOCKED ")))
        drop_connection_later (redis, "the server is a replica now (READONLY)");
      command_answer (cmd, NULL, error);
    }
  else
    command_answer (cmd, reply, NULL);
  g_free (cmd);
}

/* Answers only the commands queued before it ran: a caller that retries at
 * once gets its answer on a later iteration, not in a loop here. */
static gboolean
fail_idle_cb (gpointer user_data)
{
  BsRedis *redis = user_data;
  GQueue batch = G_QUEUE_INIT;
  Command *cmd;
  g_autoptr (GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                                          "not connected to Redis (%s)", redis->name);

  redis->fail_idle_id = 0;
  batch = redis->failing;
  g_queue_init (&redis->failing);
  while ((cmd = g_queue_peek_head (&batch)) != NULL)
    {
      g_queue_unlink (&batch, &cmd->link);
      command_answer (cmd, NULL, error);
      g_free (cmd);
    }
  return G_SOURCE_REMOVE;
}

static void
fail_later (BsRedis *redis, Command *cmd)
{
  g_queue_push_tail_link (&redis->failing, &cmd->link);
  if (redis->fail_idle_id == 0)
    redis->fail_idle_id = g_idle_add (fail_idle_cb, redis);
}

static void
send_command (BsRedis *redis, guint extra_timeout_ms, int argc, const char **argv,
              const size_t *argvlen, BsRedisReplyFunc func, gpointer user_data)
{
  Command *cmd = g_new0 (Command, 1);

  cmd->redis = redis;
  cmd->func = func;
  cmd->user_data = user_data;
  cmd->link.data = cmd;
  cmd->deadline
      = g_get_monotonic_time ()
        + (gint64) (redis->command_timeout_ms + extra_timeout_ms) * G_TIME_SPAN_MILLISECOND;
  if (redis->ac == NULL
      || redisAsyncCommandArgv (redis->ac, reply_cb, cmd, argc, argv, argvlen) != REDIS_OK)
    {
      fail_later (redis, cmd);
      return;
    }
  g_queue_push_tail_link (&redis->sent, &cmd->link);
}

void
bs_redis_command_argv (BsRedis *redis, guint extra_timeout_ms, int argc, const char **argv,
                       const size_t *argvlen, BsRedisReplyFunc func, gpointer user_data)
{
  if (redis->state != STATE_CONNECTED)
    {
      Command *cmd = g_new0 (Command, 1);

      cmd->redis = redis;
      cmd->func = func;
      cmd->user_data = user_data;
      cmd->link.data = cmd;
      fail_later (redis, cmd);
      return;
    }
  send_command (redis, extra_timeout_ms, argc, argv, argvlen, func, user_data);
}

void
bs_redis_command (BsRedis *redis, guint extra_timeout_ms, BsRedisReplyFunc func, gpointer user_data,
                  ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  va_list ap;
  const char *arg;

  va_start (ap, user_data);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  bs_redis_command_argv (redis, extra_timeout_ms, (int) args->len, (const char **) args->pdata,
                         NULL, func, user_data);
}

/* ---- connection state ------------------------------------------------------- */

static void
set_state (BsRedis *redis, State state)
{
  gboolean was_connected = redis->state == STATE_CONNECTED;

  redis->state = state;
  if (was_connected != (state == STATE_CONNECTED) && redis->state_func != NULL)
    redis->state_func (redis, state == STATE_CONNECTED, redis->state_data);
}

/* "at host:port", or which master the sentinels have not named yet. */
static char *
describe (BsRedis *redis)
{
  g_autofree char *address = bs_redis_dup_address (redis);

  if (address == NULL)
    return g_strdup_printf ("master %s", redis->master_name);
  if (redis->master_name != NULL)
    return g_strdup_printf ("master %s at %s", redis->master_name, address);
  return g_strdup_printf ("at %s", address);
}

/* The connection (or the attempt) is over: log once per outage, retry. */
static void
connection_lost (BsRedis *redis, const char *why)
{
  g_autofree char *where = NULL;

  /* "localhost" may be ::1 then 127.0.0.1: try each before waiting */
  if (redis->state == STATE_CONNECTING && redis->addresses != NULL
      && redis->addresses[redis->address_index + 1] != NULL)
    {
      g_debug ("Redis (%s) at %s: %s; trying the next address", redis->name,
               redis->addresses[redis->address_index], why);
      redis->address_index++;
      connect_now (redis);
      return;
    }
  where = describe (redis);
  if (!redis->outage_logged)
    {
      if (redis->state == STATE_CONNECTED)
        g_warning ("Redis (%s) %s lost: %s; reconnecting", redis->name, where, why);
      else
        g_warning ("Redis (%s) %s unavailable: %s; retrying", redis->name, where, why);
      redis->outage_logged = TRUE;
    }
  else if (redis->refused && g_strcmp0 (why, redis->refusal_logged) != 0)
    g_warning ("Redis (%s) %s refuses the login: %s; retrying", redis->name, where, why);
  else
    g_debug ("Redis (%s): %s", redis->name, why);
  if (redis->refused && g_strcmp0 (why, redis->refusal_logged) != 0)
    {
      g_free (redis->refusal_logged);
      redis->refusal_logged = g_strdup (why);
    }
  redis->refused = FALSE;
  if (redis->rotation != NULL)
    rotation_select (redis, redis->rotation_index + 1); /* the next sentinel */
  schedule_retry (redis);
}

static void
connected (BsRedis *redis)
{
  if (redis->outage_logged || !redis->ever_connected)
    {
      g_autofree char *address = bs_redis_dup_address (redis);

      g_message ("Redis (%s) connected to %s as %s", redis->name, address,
                 redis->username != NULL ? redis->username : "default");
    }
  redis->next_poll = g_get_monotonic_time () + SENTINEL_POLL_MS * G_TIME_SPAN_MILLISECOND;
  redis->outage_logged = FALSE;
  g_clear_pointer (&redis->refusal_logged, g_free);
  redis->ever_connected = TRUE;
  redis->backoff_ms = BACKOFF_MIN_MS;
  set_state (redis, STATE_CONNECTED);
}

/* Free the context now; its commands fail (TIMED_OUT for the marked one). */
static void
drop_connection (BsRedis *redis, const char *why)
{
  redisAsyncContext *ac = redis->ac;

  if (ac == NULL)
    return;
  ac->data = NULL; /* no connect/disconnect callbacks into us from here on */
  redis->ac = NULL;
  redisAsyncFree (ac);
  connection_lost (redis, why);
}

static gboolean
drop_idle_cb (gpointer user_data)
{
  BsRedis *redis = user_data;
  g_autofree char *why = g_steal_pointer (&redis->drop_reason);

  redis->drop_idle_id = 0;
  drop_connection (redis, why);
  return G_SOURCE_REMOVE;
}

/* From inside a hiredis callback: drop once it has returned. */
static void
drop_connection_later (BsRedis *redis, const char *why)
{
  if (redis->drop_idle_id != 0)
    return;
  redis->drop_reason = g_strdup (why);
  redis->drop_idle_id = g_idle_add (drop_idle_cb, redis);
}

static void
on_connect (const redisAsyncContext *ac, int status)
{
  BsRedis *redis = ac->data;

  if (redis == NULL || status == REDIS_OK)
    return; /* the handshake's PING reply says when we are ready */
  /* hiredis frees the context after we return */
  redis->ac = NULL;
  connection_lost (redis, ac->errstr[0] != '\0' ? ac->errstr : "connect failed");
}

static void
on_disconnect (const redisAsyncContext *ac, int status)
{
  BsRedis *redis = ac->data;

  if (redis == NULL)
    return;
  redis->ac = NULL;
  connection_lost (redis,
                   status == REDIS_OK || ac->errstr[0] == '\0' ? "connection closed" : ac->errstr);
}

static void
handshake_step_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  const char *step = user_data;

  if (error != NULL && g_error_matches (error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY))
    {
      g_autofree char *why = g_strdup_printf ("%s refused: %s", step, error->message);

      redis->refused = TRUE;
      drop_connection_later (redis, why);
    }
}

static void
handshake_done_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  if (reply != NULL && redis->state == STATE_CONNECTING && redis->drop_idle_id == 0)
    connected (redis);
}

/* HELLO 2 answers [server, redis, version, ..., role, master|replica, ...]:
 * a sentinel may still name a master that was made a replica since. */
static void
hello_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  const char *role = bs_redis_reply_str (bs_redis_reply_field (reply, "role"));

  if (reply == NULL || redis->state != STATE_CONNECTING || redis->drop_idle_id != 0)
    {
      handshake_step_cb (redis, reply, error, (gpointer) "HELLO");
      return;
    }
  if (g_strcmp0 (role, "master") != 0)
    {
      g_autofree char *why = g_strdup_printf ("the server is a %s, not the master",
                                              role != NULL ? role : "server of no known role");

      drop_connection_later (redis, why);
      return;
    }
  connected (redis);
}

static void
start_handshake (BsRedis *redis)
{
  g_autofree char *client_name = g_strdup (redis->name);

  /* CLIENT SETNAME takes no spaces */
  g_strdelimit (client_name, " \t\r\n", '-');
  /* the reply to a refused AUTH (WRONGPASS ...) never holds the password */
  if (redis->password != NULL && redis->username != NULL)
    send_command (redis, 0, 3, (const char *[]){ "AUTH", redis->username, redis->password }, NULL,
                  handshake_step_cb, (gpointer) "AUTH");
  else if (redis->password != NULL)
    send_command (redis, 0, 2, (const char *[]){ "AUTH", redis->password }, NULL, handshake_step_cb,
                  (gpointer) "AUTH");
  send_command (redis, 0, 3, (const char *[]){ "CLIENT", "SETNAME", client_name }, NULL,
                handshake_step_cb, (gpointer) "CLIENT SETNAME");
  /* HELLO: allowed to every user, as AUTH is (no ACL rule for ROLE) */
  if (redis->master_name != NULL)
    send_command (redis, 0, 2, (const char *[]){ "HELLO", "2" }, NULL, hello_cb, NULL);
  else
    send_command (redis, 0, 1, (const char *[]){ "PING" }, NULL, handshake_done_cb, NULL);
}

static void
connect_now (BsRedis *redis)
{
  redisAsyncContext *ac;

  set_state (redis, STATE_CONNECTING);
  redis->connect_deadline
      = g_get_monotonic_time () + (gint64) redis->connect_timeout_ms * G_TIME_SPAN_MILLISECOND;
  ac = redisAsyncConnect (redis->addresses[redis->address_index], redis->port);
  if (ac == NULL)
    {
      connection_lost (redis, "out of memory");
      return;
    }
  if (ac->err != 0)
    {
      g_autofree char *why = g_strdup (ac->errstr);

      redisAsyncFree (ac);
      connection_lost (redis, why);
      return;
    }
  ac->data = redis;
  redis->ac = ac;
  bs_redis_source_attach (ac);
  redisAsyncSetConnectCallback (ac, on_connect);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  start_handshake (redis);
}

static void
resolved_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);
  BsRedis *redis;
  guint n;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* freed */
  redis = user_data;
  g_clear_object (&redis->resolve_cancellable);
  if (addresses == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot resolve %s: %s", redis->host, error->message);

      connection_lost (redis, why);
      return;
    }
  g_clear_pointer (&redis->addresses, g_strfreev);
  redis->addresses = g_new0 (char *, g_list_length (addresses) + 1);
  n = 0;
  for (GList *l = addresses; l != NULL; l = l->next)
    redis->addresses[n++] = g_inet_address_to_string (l->data);
  redis->address_index = 0;
  g_resolver_free_addresses (addresses);
  connect_now (redis);
}

/* Resolve without blocking (hiredis would call getaddrinfo() on the loop). */
static void
attempt_host (BsRedis *redis)
{
  g_autoptr (GResolver) resolver = NULL;

  if (g_hostname_is_ip_address (redis->host))
    {
      g_clear_pointer (&redis->addresses, g_strfreev);
      redis->addresses = g_new0 (char *, 2);
      redis->addresses[0] = g_strdup (redis->host);
      redis->address_index = 0;
      connect_now (redis);
      return;
    }
  set_state (redis, STATE_RESOLVING);
  resolver = g_resolver_get_default ();
  redis->resolve_cancellable = g_cancellable_new ();
  g_resolver_lookup_by_name_async (resolver, redis->host, redis->resolve_cancellable, resolved_cb,
                                   redis);
}

/* ---- the master, from a sentinel ----------------------------------------------- */

static void ask_sentinel (BsRedis *redis);

/* The sentinel named @host:@port: a change of master is logged and counted. */
static void
found_master (BsRedis *redis, const char *host, guint16 port)
{
  g_autofree char *address = NULL;
  g_autofree char *sentinel = bs_redis_dup_address (redis->sentinel);

  g_free (redis->host);
  redis->host = g_strdup (host);
  redis->port = port;
  address = bs_redis_dup_address (redis);
  if (g_strcmp0 (address, redis->master) == 0)
    return;
  if (redis->master == NULL)
    g_message ("Redis (%s) master %s is at %s (sentinel %s)", redis->name, redis->master_name,
               address, sentinel);
  else
    {
      g_message ("Redis (%s) master %s is now %s, was %s (sentinel %s)", redis->name,
                 redis->master_name, address, redis->master, sentinel);
      if (redis->switches != NULL)
        bs_metric_inc (redis->switches, (const char *const[]){ redis->name, NULL }, 1);
    }
  g_free (redis->master);
  redis->master = g_steal_pointer (&address);
}

/* SENTINEL get-master-addr-by-name: [ip, port], or nil when the sentinel
 * does not monitor that name. */
static void
master_addr_cb (BsRedis *sentinel, redisReply *reply, const GError *error, gpointer user_data)
{
  BsRedis *redis = user_data;
  const char *host = NULL, *port_text = NULL;
  guint64 port = 0;
  g_autofree char *why = NULL;
  g_autofree char *at = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* being freed */
  redis->discovering = FALSE;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
    {
      host = bs_redis_reply_str (reply->element[0]);
      port_text = bs_redis_reply_str (reply->element[1]);
      if (port_text != NULL)
        port = g_ascii_strtoull (port_text, NULL, 10);
    }
  if (host != NULL && *host != '\0' && port > 0 && port <= 65535)
    {
      if (redis->state == STATE_DISCOVERING)
        {
          found_master (redis, host, (guint16) port);
          attempt_host (redis);
        }
      else if (redis->state == STATE_CONNECTED
               && (g_strcmp0 (host, redis->host) != 0 || port != redis->port))
        {
          /* the next connect asks again, and logs and counts the switch */
          why = g_strdup_printf ("the sentinels name %s:%u as the master now", host, (guint) port);
          drop_connection_later (redis, why);
        }
      return;
    }
  at = bs_redis_dup_address (sentinel);
  if (error != NULL)
    why = g_strdup_printf ("the sentinel at %s did not answer: %s", at, error->message);
  else
    why = g_strdup_printf ("the sentinel at %s does not know master %s", at, redis->master_name);
  /* the next sentinel may know better */
  if (error == NULL || error->domain == BS_REDIS_ERROR)
    drop_connection_later (sentinel, why);
  if (redis->state == STATE_DISCOVERING)
    connection_lost (redis, why);
  else
    g_debug ("Redis (%s): %s", redis->name, why);
}

static void
ask_sentinel (BsRedis *redis)
{
  if (redis->discovering)
    return;
  redis->discovering = TRUE;
  redis->next_poll = g_get_monotonic_time () + SENTINEL_POLL_MS * G_TIME_SPAN_MILLISECOND;
  bs_redis_command (redis->sentinel, 0, master_addr_cb, redis, "SENTINEL",
                    "get-master-addr-by-name", redis->master_name, NULL);
}

/* A sentinel connection came up: the master may be waiting for it. */
static void
sentinel_state_changed (BsRedis *sentinel, gboolean connected, gpointer user_data)
{
  BsRedis *redis = user_data;

  if (connected && redis->state == STATE_DISCOVERING)
    ask_sentinel (redis);
}

static void
attempt (BsRedis *redis)
{
  if (redis->master_name == NULL)
    {
      attempt_host (redis);
      return;
    }
  set_state (redis, STATE_DISCOVERING);
  /* else the sentinel connection's coming up asks */
  if (bs_redis_is_connected (redis->sentinel))
    ask_sentinel (redis);
}

static gboolean
retry_cb (gpointer user_data)
{
  BsRedis *redis = user_data;

  redis->retry_id = 0;
  attempt (redis);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (BsRedis *redis)
{
  set_state (redis, STATE_WAITING);
  if (redis->retry_id != 0)
    return;
  redis->retry_id = g_timeout_add (redis->backoff_ms, retry_cb, redis);
  redis->backoff_ms = MIN (redis->backoff_ms * 2,
                           redis->master_name != NULL ? BACKOFF_MAX_SENTINEL_MS : BACKOFF_MAX_MS);
}

/* Deadlines: of the connect and handshake, and of the oldest command (Redis
 * answers in order, so the head is the one that is late). */
static gboolean
tick_cb (gpointer user_data)
{
  BsRedis *redis = user_data;
  gint64 now = g_get_monotonic_time ();
  Command *head;

  if (redis->ac == NULL || redis->drop_idle_id != 0)
    return G_SOURCE_CONTINUE;
  if (redis->master_name != NULL && redis->state == STATE_CONNECTED && now > redis->next_poll
      && bs_redis_is_connected (redis->sentinel))
    ask_sentinel (redis);
  if (redis->state == STATE_CONNECTING && now > redis->connect_deadline)
    {
      g_autofree char *why
          = g_strdup_printf ("no connection within %u ms", redis->connect_timeout_ms);

      drop_connection (redis, why);
      return G_SOURCE_CONTINUE;
    }
  head = g_queue_peek_head (&redis->sent);
  if (redis->state == STATE_CONNECTED && head != NULL && now > head->deadline)
    {
      head->timed_out = TRUE;
      drop_connection (redis, "a command got no reply in time");
    }
  return G_SOURCE_CONTINUE;
}

void
bs_redis_start (BsRedis *redis)
{
  g_return_if_fail (redis->state == STATE_IDLE);
  redis->tick_id = g_timeout_add (TICK_MS, tick_cb, redis);
  if (redis->sentinel != NULL)
    bs_redis_start (redis->sentinel);
  attempt (redis);
}

void
bs_redis_free (BsRedis *redis)
{
  redisAsyncContext *ac;
  Command *cmd;
  g_autoptr (GError) error = NULL;

  if (redis == NULL)
    return;
  redis->state_func = NULL;
  /* answers a SENTINEL command in flight: CANCELLED, ignored */
  g_clear_pointer (&redis->sentinel, bs_redis_free);
  g_clear_handle_id (&redis->tick_id, g_source_remove);
  g_clear_handle_id (&redis->retry_id, g_source_remove);
  g_clear_handle_id (&redis->drop_idle_id, g_source_remove);
  g_clear_handle_id (&redis->fail_idle_id, g_source_remove);
  if (redis->resolve_cancellable != NULL)
    {
      g_cancellable_cancel (redis->resolve_cancellable);
      g_clear_object (&redis->resolve_cancellable);
    }

  /* every waiting command hears CANCELLED now; hiredis then frees them */
  error
      = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Redis connection (%s) closed", redis->name);
  while ((cmd = g_queue_peek_head (&redis->sent)) != NULL)
    {
      g_queue_unlink (&redis->sent, &cmd->link);
      command_answer (cmd, NULL, error);
      cmd->redis = NULL;
    }
  while ((cmd = g_queue_peek_head (&redis->failing)) != NULL)
    {
      g_queue_unlink (&redis->failing, &cmd->link);
      command_answer (cmd, NULL, error);
      g_free (cmd);
    }
  ac = g_steal_pointer (&redis->ac);
  if (ac != NULL)
    {
      ac->data = NULL;
      redisAsyncFree (ac); /* deferred by hiredis when inside one of its callbacks */
    }
  g_free (redis->drop_reason);
  g_free (redis->refusal_logged);
  g_strfreev (redis->addresses);
  g_strfreev (redis->rotation);
  g_free (redis->master_name);
  g_free (redis->master);
  g_free (redis->host);
  g_free (redis->username);
  g_free (redis->password);
  g_free (redis->name);
  g_free (redis);
}
