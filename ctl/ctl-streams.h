/* ctl-streams.h: the streams of docs/events.md, as bookstorectl reads them. */
#pragma once

#include "ctl-clients.h"

G_BEGIN_DECLS

#define CTL_STREAM_EVENTS "bookstore:orders:events"
#define CTL_STREAM_STATUS "bookstore:orders:status"
#define CTL_STREAM_NOTIFICATIONS "bookstore:notifications"
#define CTL_STREAM_REQUESTS "bookstore:order-requests"
#define CTL_STREAM_RESULTS "bookstore:order-results"
#define CTL_DEAD_SUFFIX ":dead"

/* The streams read by consumer groups; each has a <stream>:dead. */
extern const char *const ctl_consumed_streams[];
/* The three dead-letter streams. */
extern const char *const ctl_dead_streams[];

/* [{stream, length, groups: [{name, consumers, pending, lag}]}] for the
 * consumed streams and the lengths of the others. A stream that does not
 * exist yet has length 0 and no groups. */
JsonNode *ctl_streams_status (redisContext *redis, GError **error);

/* An entry [id, [field, value, ...]] of an XRANGE reply as {"id":..., field: value...}. */
JsonObject *ctl_stream_entry_object (redisReply *entry);

/* Every entry of @stream (in pages), @func called on each until it returns FALSE. */
typedef gboolean (*CtlEntryFunc) (redisReply *entry, gpointer user_data);
gboolean ctl_stream_scan (redisContext *redis, const char *stream, CtlEntryFunc func,
                          gpointer user_data, GError **error);

G_END_DECLS
