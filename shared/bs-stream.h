/* bs-stream.h: Redis Stream ids, and the consumers of a group that a
 * stopped process of this host left behind.
 *
 * Consumer names: a process with no configured name is <hostname>-<pid>
 * (bs_stream_default_consumer()), unique on its host. Each restart is a new
 * consumer; Redis keeps the old one, with its idle time growing, until
 * XGROUP DELCONSUMER. bs_stream_delete_dead_consumers() removes the ones
 * that can no longer matter: named <this hostname>-<pid> with no process
 * <pid> here, idle for a while, and with no pending entries (what a process
 * that died held is claimed by the others first, then it goes too). */
#pragma once

#include "bs-redis.h"

G_BEGIN_DECLS

/* <ms>-<seq>; ordered as Redis orders entries. */
typedef struct
{
  guint64 ms;
  guint64 seq;
} BsStreamId;

/* Room for any id as text, with its NUL. */
#define BS_STREAM_ID_MAX 42

/* "<ms>-<seq>" or "<ms>" (seq 0); FALSE for anything else. */
gboolean bs_stream_id_parse (const char *text, BsStreamId *id);
/* @buf of at least BS_STREAM_ID_MAX bytes; returns @buf. */
char *bs_stream_id_format (const BsStreamId *id, char *buf);
int bs_stream_id_compare (const BsStreamId *a, const BsStreamId *b);
/* The smallest id after @id (what XTRIM MINID takes to remove @id too). */
BsStreamId bs_stream_id_next (const BsStreamId *id);

/* "<hostname>-<pid>" of this process. */
char *bs_stream_default_consumer (void);

/* TRUE when @name is "<this hostname>-<pid>", is not @own, and no process
 * <pid> runs here (kill(pid, 0) says ESRCH). */
gboolean bs_stream_consumer_is_dead_here (const char *name, const char *own);

/* @deleted: the consumers removed (NULL-terminated, maybe empty). @error
 * when XINFO CONSUMERS or a deletion failed (G_IO_ERROR_CANCELLED: @redis
 * is being freed). Called exactly once, never from inside the call that
 * started it. */
typedef void (*BsStreamConsumersFunc) (const char *const *deleted, const GError *error,
                                       gpointer user_data);

/* XINFO CONSUMERS @stream @group, then XGROUP DELCONSUMER for every consumer
 * that bs_stream_consumer_is_dead_here() (@own is ours), idle for at least
 * @min_idle_ms, with no pending entries. A missing group or stream is not
 * an error (nothing to delete). */
void bs_stream_delete_dead_consumers (BsRedis *redis, const char *stream, const char *group,
                                      const char *own, guint min_idle_ms,
                                      BsStreamConsumersFunc func, gpointer user_data);

G_END_DECLS
