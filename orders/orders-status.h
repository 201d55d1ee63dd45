/* orders-status.h: the consumer of bookstore:orders:status: the worker's
 * status changes applied to the orders, in consumer group
 * "bookstore-orders".
 *
 * An entry is acknowledged only once the database has answered for it:
 * applied, ignored (a repeated or late change), or refused as invalid (bad
 * fields, unknown order). While the database is away nothing is
 * acknowledged: the entries stay pending and are read again. Entries left
 * pending by a consumer that died are claimed after ORDERS_CLAIM_IDLE_MS. */
#pragma once

#include "bs-db.h"
#include "bs-metrics.h"
#include "bs-redis.h"

G_BEGIN_DECLS

#define ORDERS_STATUS_STREAM "bookstore:orders:status"
#define ORDERS_STATUS_GROUP "bookstore-orders"

typedef struct _OrdersStatus OrdersStatus;

typedef void (*OrdersStatusStoppedFunc) (gpointer user_data);

/* Its own Redis connection from @redis_options (named "orders-status"),
 * reading as consumer @consumer. Entries pending for longer than
 * @claim_idle_ms with another consumer are taken over. @redis_connected:
 * the shared redis_connected{connection} gauge family. @pool must outlive
 * the consumer. */
OrdersStatus *orders_status_new (BsDbPool *pool, const BsRedisOptions *redis_options,
                                 const char *consumer, guint claim_idle_ms, BsMetrics *metrics,
                                 BsMetricFamily *redis_connected);
void orders_status_free (OrdersStatus *status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OrdersStatus, orders_status_free)

/* Connect and begin consuming; the schema must be in place. */
void orders_status_start (OrdersStatus *status);

gboolean orders_status_is_connected (OrdersStatus *status);

/* Read no more. FALSE when nothing is in flight; else TRUE, and @func is
 * called (from the main loop) once the read in flight and its entries are
 * applied and acknowledged (a blocking read ends within a second). */
gboolean orders_status_stop (OrdersStatus *status, OrdersStatusStoppedFunc func,
                             gpointer user_data);

G_END_DECLS
