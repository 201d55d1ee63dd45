/* worker-streams.h: the Redis names of docs/events.md, in one place for the
 * daemon and bookstore-enqueue. */
#pragma once

#define WORKER_GROUP "bookstore-workers"
/* The group bookstore-orders reads bookstore:orders:status with. */
#define WORKER_ORDERS_GROUP "bookstore-orders"

#define WORKER_STREAM_ORDER_EVENTS "bookstore:orders:events"
#define WORKER_STREAM_ORDER_STATUS "bookstore:orders:status"
#define WORKER_STREAM_NOTIFICATIONS "bookstore:notifications"
#define WORKER_STREAM_ORDER_REQUESTS "bookstore:order-requests"
#define WORKER_STREAM_ORDER_RESULTS "bookstore:order-results"
/* <stream>:dead */
#define WORKER_DEAD_SUFFIX ":dead"
/* SET <prefix><order_id> <status> EX <WORKER_DONE_TTL_S> once an order is done */
#define WORKER_DONE_KEY_PREFIX "bookstore:orders:done:"

#define WORKER_QUEUE_PROCESS_ORDER "process-order"
#define WORKER_QUEUE_SEND_NOTIFICATION "send-notification"
#define WORKER_QUEUE_CREATE_ORDER "create-order"

/* order-results keeps about this many entries (XADD MAXLEN ~): clients read
 * their result within moments; nobody consumes it with a group. The
 * stream trimmer cuts it to WORKER_RESULTS_MAX_ENTRIES (default the same). */
#define WORKER_RESULTS_MAXLEN "100000"
#define WORKER_RESULTS_MAX_ENTRIES 100000
