/* bs-stream-trimmer.h: keep the streams a service writes from growing
 * without bound, from a timer on the main loop.
 *
 * A consumed stream (read by consumer groups) is trimmed with
 * XTRIM <stream> MINID <cut>, where <cut> is the lowest of
 *   - for every group: its oldest pending entry (XPENDING), or else the id
 *     after its last-delivered-id (XINFO GROUPS): what it still needs;
 *   - the retention: entries younger than @retention_ms (by the Redis
 *     server's clock, TIME: entry ids are its milliseconds) stay for
 *     inspection.
 * A group that stopped reading therefore holds the line: nothing it still
 * needs is ever trimmed. Until the group that reads the stream for the
 * project exists, nothing is trimmed (it starts from the first entry).
 * Groups are read before their pending entries, and entries are only ever
 * delivered after last-delivered-id, so a cut never passes an entry a
 * group has not acknowledged.
 *
 * A capped stream (no group: kept for people and clients to look at) is
 * trimmed to its last @max_entries entries (XTRIM MAXLEN, exact).
 *
 * Metrics: bookstore_stream_length{stream}, bookstore_stream_trimmed_total
 * {stream}; for every group of a consumed stream
 * bookstore_stream_group_pending{stream,group},
 * bookstore_stream_group_lag{stream,group} and
 * bookstore_stream_group_held_seconds{stream,group}: how far past the
 * retention the oldest entry the group still needs is (0 when the group
 * holds nothing back). Series of groups that are gone are dropped. */
#pragma once

#include "bs-metrics.h"
#include "bs-redis.h"

G_BEGIN_DECLS

typedef struct _BsStreamTrimmer BsStreamTrimmer;

/* The longest retention the services accept: 30 days. */
#define BS_STREAM_RETENTION_MAX_MS 2592000000u

/* @redis: a connection for short commands (never a blocking read), used
 * from start to stop or free; free the trimmer before it. Registers the
 * metric families in @metrics (one trimmer per registry). A pass runs every
 * 5 s (every retention/2, at least every second, for a retention under
 * 10 s). */
BsStreamTrimmer *bs_stream_trimmer_new (BsRedis *redis, BsMetrics *metrics, guint retention_ms);
/* A pass in flight ends quietly. */
void bs_stream_trimmer_free (BsStreamTrimmer *trimmer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsStreamTrimmer, bs_stream_trimmer_free)

/* @stream is read by groups; @group is the project's reader: until it
 * exists nothing is trimmed. */
void bs_stream_trimmer_add_consumed (BsStreamTrimmer *trimmer, const char *stream,
                                     const char *group);
/* @stream keeps its last @max_entries entries. */
void bs_stream_trimmer_add_capped (BsStreamTrimmer *trimmer, const char *stream, guint max_entries);

void bs_stream_trimmer_start (BsStreamTrimmer *trimmer);
/* No more passes (SIGTERM). */
void bs_stream_trimmer_stop (BsStreamTrimmer *trimmer);

G_END_DECLS
