/* ctl-clients.h: blocking clients of Redis, PostgreSQL and HTTP, each call
 * bounded by the command's timeout. bookstorectl is a command-line tool, not
 * a daemon: blocking is fine, waiting forever is not. */
#pragma once

#include "ctl.h"

#include "bs-redis-blocking.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGconn, PQfinish)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

/* Connected and logged in (ctl_config_redis()), directly or through the
 * sentinels (REDIS_SENTINELS, REDIS_MASTER_NAME) as the services are.
 * BS_ERROR_CONFIG for bad settings, BS_ERROR_UNAVAILABLE when Redis cannot
 * be reached or refuses the login. @who: whom we logged in as; @where
 * (may be NULL): "host:port" of the server, set on success. */
redisContext *ctl_redis_connect (Ctl *ctl, char **who, char **where, GError **error);

/* A reply that is not an error reply; argv is NULL-terminated. */
redisReply *ctl_redis_command (redisContext *redis, GError **error, const char *const *argv);
#define ctl_redis(redis, error, ...)                                                               \
  ctl_redis_command (redis, error, (const char *const[]){ __VA_ARGS__, NULL })

/* @key's value in a flat [key, value, ...] array reply, or NULL. */
redisReply *ctl_redis_field (redisReply *array, const char *key);

/* The service's database (BOOKS_DB_DSN, DATABASE_URL), connected with
 * connect_timeout and statement_timeout set from the timeout. */
PGconn *ctl_pg_connect (Ctl *ctl, CtlService service, GError **error);

/* PQpingParams: whether the server accepts connections (no login needed). */
PGPing ctl_pg_ping (Ctl *ctl, CtlService service);

/* One parameterised statement; the result when it returned tuples or ran. */
PGresult *ctl_pg_exec (Ctl *ctl, PGconn *conn, const char *sql, int n_params,
                       const char *const *params, GError **error);

/* GET @url (with Authorization: Bearer @token unless NULL): the status (0
 * when no answer, with @error set), the body and the Server header. On
 * loopback the certificate is not checked unless a token is sent. */
guint ctl_http_get (Ctl *ctl, const char *url, const char *token, char **body, char **server,
                    GError **error);

G_END_DECLS
