/* orders-relay.h: the outbox relay: publishes the order events written with
 * each order (the outbox table) to the Redis stream bookstore:orders:events,
 * then marks them sent.
 *
 * At least once: a row is marked sent only after Redis accepted its XADD;
 * while Redis is away nothing is marked and the rows wait. An event may be
 * published twice (lost reply, crash before marking, two relays at once);
 * consumers ignore the repeat (docs/events.md). */
#pragma once

#include "bs-db.h"
#include "bs-metrics.h"
#include "bs-redis.h"

G_BEGIN_DECLS

#define ORDERS_EVENTS_STREAM "bookstore:orders:events"
/* The worker's group on it: until it exists the stream is not trimmed. */
#define ORDERS_EVENTS_GROUP "bookstore-workers"

typedef struct _OrdersRelay OrdersRelay;

typedef void (*OrdersRelayStoppedFunc) (gpointer user_data);

/* Its own Redis connection from @redis_options (named "orders-relay").
 * Every @interval_ms it refreshes the outbox gauges and publishes what is
 * pending. @redis_connected: the redis_connected{connection} gauge family,
 * shared with the other connections. @pool must outlive the relay. */
OrdersRelay *orders_relay_new (BsDbPool *pool, const BsRedisOptions *redis_options,
                               guint interval_ms, BsMetrics *metrics,
                               BsMetricFamily *redis_connected);
/* Drops a batch in flight: its rows stay unsent and go out later. */
void orders_relay_free (OrdersRelay *relay);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OrdersRelay, orders_relay_free)

/* Connect and begin publishing; the schema must be in place. */
void orders_relay_start (OrdersRelay *relay);

/* An order was just created: publish now rather than at the next tick. */
void orders_relay_kick (OrdersRelay *relay);

gboolean orders_relay_is_connected (OrdersRelay *relay);

/* The relay's connection (no blocking commands on it), for the stream
 * trimmer; valid until orders_relay_free(). */
BsRedis *orders_relay_get_redis (OrdersRelay *relay);

/* Publish no more. FALSE when nothing is in flight; else TRUE, and @func
 * is called (from the main loop) once the batch in flight is finished. */
gboolean orders_relay_stop (OrdersRelay *relay, OrdersRelayStoppedFunc func, gpointer user_data);

G_END_DECLS
