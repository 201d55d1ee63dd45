/* bs-redis.h: one asynchronous Redis connection on the GLib main loop, kept
 * up for as long as it lives.
 *
 * hiredis's async API drives the connection through our own GSource adapter
 * (shared/bs-redis-source.c). The host is resolved without blocking, the
 * connect has a deadline, AUTH is sent when a password is set (as the ACL
 * user @username when one is given), and a lost
 * connection is re-established with exponential backoff (100 ms doubling to
 * 5 s). Going down and coming back are each logged once.
 *
 * With sentinels (@sentinels and @master_name), @host and @port are not
 * used: each connect asks a sentinel (one at a time, the next after a
 * failure) for the master's address, and the handshake checks with HELLO
 * that the server is a master (a sentinel can be behind). The connection is
 * dropped and the master looked up again when the server answers READONLY
 * (it was made a replica), when the sentinel names another master (asked
 * every second while connected), or when the connection is lost.
 *
 * Redis answers the commands of one connection in order, so a blocking
 * command (XREADGROUP ... BLOCK) delays everything queued behind it: give
 * blocking readers their own BsRedis. */
#pragma once

#include <gio/gio.h>
#include <hiredis/hiredis.h>

#include "bs-config.h"
#include "bs-metrics.h"

G_BEGIN_DECLS

typedef struct _BsRedis BsRedis;

typedef struct
{
  const char *host;         /* name or address; default "127.0.0.1" */
  guint16 port;             /* default 6379 */
  const char *username;     /* ACL user (AUTH <username> <password>); NULL: default */
  const char *password;     /* NULL or "" for none; never logged */
  const char *name;         /* what the connection is for, in logs and CLIENT SETNAME */
  guint connect_timeout_ms; /* default 2000 */
  /* A command without a reply after this (plus its own extra time) drops the
   * connection: Redis is hung or unreachable. Default 5000. */
  guint command_timeout_ms;
  /* Sentinel: "host:port" entries (as bs_redis_parse_sentinels() checked),
   * and the name the sentinels monitor the master by. Both or neither. */
  const char *const *sentinels;
  const char *master_name;
  /* A counter with the label "connection" (redis_master_switches_total),
   * counted on each change of master, its series at 0 from the start; may
   * be NULL. */
  BsMetricFamily *master_switches;
} BsRedisOptions;

void bs_redis_options_init_default (BsRedisOptions *options);
/* Where and as whom, from REDIS_* (bs_config_get_redis()): host, port, user,
 * password, sentinels. @options points into @config afterwards. */
void bs_redis_options_set_config (BsRedisOptions *options, const BsConfigRedis *config);

/* Called on the main loop each time the connection comes up (after AUTH)
 * and each time it is lost. */
typedef void (*BsRedisStateFunc) (BsRedis *redis, gboolean connected, gpointer user_data);

/* @reply is valid only during the call (hiredis frees it after): copy what
 * you keep. On failure @reply is NULL and @error says why: a Redis error
 * reply (BS_REDIS_ERROR_REPLY, message as Redis sent it),
 * G_IO_ERROR_NOT_CONNECTED (no connection now), G_IO_ERROR_CONNECTION_CLOSED
 * (lost while waiting), G_IO_ERROR_TIMED_OUT, G_IO_ERROR_CANCELLED (the
 * BsRedis is being freed). Always called exactly once, never from inside
 * bs_redis_command*(). */
typedef void (*BsRedisReplyFunc) (BsRedis *redis, redisReply *reply, const GError *error,
                                  gpointer user_data);

#define BS_REDIS_ERROR (bs_redis_error_quark ())
GQuark bs_redis_error_quark (void);
typedef enum
{
  BS_REDIS_ERROR_REPLY, /* Redis answered with an error */
} BsRedisError;

/* Copies @options. Does not connect until bs_redis_start(). */
BsRedis *bs_redis_new (const BsRedisOptions *options);
/* Fails the commands still waiting (G_IO_ERROR_CANCELLED) before returning. */
void bs_redis_free (BsRedis *redis);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsRedis, bs_redis_free)

void bs_redis_set_state_func (BsRedis *redis, BsRedisStateFunc func, gpointer user_data);
void bs_redis_start (BsRedis *redis);
gboolean bs_redis_is_connected (BsRedis *redis);
const char *bs_redis_get_name (BsRedis *redis);
/* "host:port" of the server in use (with sentinels, the master last
 * found); NULL before the first one is known. */
char *bs_redis_dup_address (BsRedis *redis);

/* Send one command, binary-safe: @argc arguments with their lengths
 * (@argvlen NULL: NUL-terminated strings). @extra_timeout_ms is added to
 * the command timeout (the BLOCK time of a blocking read). */
void bs_redis_command_argv (BsRedis *redis, guint extra_timeout_ms, int argc, const char **argv,
                            const size_t *argvlen, BsRedisReplyFunc func, gpointer user_data);

/* Same, arguments as NUL-terminated strings ending with NULL. */
void bs_redis_command (BsRedis *redis, guint extra_timeout_ms, BsRedisReplyFunc func,
                       gpointer user_data, ...) G_GNUC_NULL_TERMINATED;

/* ---- reading replies ---------------------------------------------------- */

/* The string of a STRING/STATUS/VERB reply, or NULL. */
const char *bs_redis_reply_str (const redisReply *reply);

/* The value of @key in a reply that is a flat [key, value, ...] array (as
 * XINFO answers in RESP2), or NULL. */
const redisReply *bs_redis_reply_field (const redisReply *map, const char *key);

/* An INTEGER reply's value into *@out; FALSE when @reply is anything else. */
gboolean bs_redis_reply_integer (const redisReply *reply, long long *out);

/* A stream entry's fields (XRANGE/XREADGROUP/XCLAIM element: [id, [k, v, ...]]),
 * as a string → string table (copied; a NUL byte inside a name or value is
 * copied as U+FFFD, never cut there); NULL if @entry has not that shape.
 * *@id is set to a copy of the entry id. */
GHashTable *bs_redis_entry_fields (const redisReply *entry, char **id);

/* ---- addresses (bs-redis-address.c) ------------------------------------- */

#define BS_REDIS_SENTINEL_PORT 26379
#define BS_REDIS_MAX_SENTINELS 16

/* "host", "host:port", "[ipv6]" or "[ipv6]:port" (@default_port when no
 * port is given). BS_ERROR_CONFIG naming @text when it is none of those. */
gboolean bs_redis_parse_address (const char *text, guint16 default_port, char **host, guint16 *port,
                                 GError **error);

/* A comma-separated list of sentinel addresses (port 26379 by default),
 * spaces around entries allowed: the entries, trimmed. */
GStrv bs_redis_parse_sentinels (const char *list, GError **error);

G_END_DECLS
