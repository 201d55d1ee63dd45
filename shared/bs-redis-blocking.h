/* bs-redis-blocking.h: a blocking Redis connection for the command-line
 * tools (bookstore-enqueue, bookstorectl), which have no main loop to keep
 * answering. The daemons never use it: they talk to Redis through BsRedis on
 * their own GLib source. Every connect and command is bounded by a timeout. */
#pragma once

#include "bs-config.h"

#include <glib.h>
#include <hiredis/hiredis.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (redisContext, redisFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (redisReply, freeReplyObject)

/* A reply that is not an error reply. Else NULL and @error:
 * BS_ERROR_UNAVAILABLE when Redis did not answer (the connection is then
 * unusable), BS_ERROR_INTERNAL when it answered with an error. */
redisReply *bs_redis_blocking_command (redisContext *redis, int argc, const char *const *argv,
                                       GError **error);

/* Connected as @config says and logged in (AUTH [user] password), with
 * @timeout_ms on the connect and on every command after it. Through
 * Sentinel, each sentinel in turn is asked for the master (SENTINEL
 * get-master-addr-by-name) until one names a server that says it is the
 * master (HELLO 2), as the daemons do. @address: "host:port" of the server,
 * also on failure when one was tried. BS_ERROR_UNAVAILABLE when no server
 * could be reached or the login was refused. */
redisContext *bs_redis_blocking_connect (const BsConfigRedis *config, guint timeout_ms,
                                         char **address, GError **error);

G_END_DECLS
