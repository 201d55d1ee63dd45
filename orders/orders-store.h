/* orders-store.h: the SQL of the orders tables, as prepared statements. */
#pragma once

#include "bs-db.h"

G_BEGIN_DECLS

/* $1 limit, $2 offset → total, then ORDERS_ORDER_COLUMNS (NULL when the page is empty) */
#define ORDERS_SQL_LIST "orders_list"
/* $1 id → ORDERS_ORDER_COLUMNS */
#define ORDERS_SQL_GET "orders_get"
/* $1 book_id, $2 title, $3 author, $4 quantity, $5 unit price, $6 total,
 * $7 traceparent, $8 tracestate (may be NULL) → ORDERS_ORDER_COLUMNS; its
 * order.created outbox row, with the trace context, is inserted by the same
 * statement */
#define ORDERS_SQL_CREATE "orders_create"
/* as ORDERS_SQL_CREATE, plus $9 idempotency key, $10 request hash → the new
 * order, or no row (and no order, no outbox row) when the key exists already */
#define ORDERS_SQL_CREATE_WITH_KEY "orders_create_with_key"
/* $1 idempotency key → request_hash, then ORDERS_ORDER_COLUMNS; no row when unknown */
#define ORDERS_SQL_FIND_KEY "orders_find_key"
/* $1 retention in hours → number of keys removed */
#define ORDERS_SQL_PURGE_KEYS "orders_purge_keys"

/* ---- the outbox relay ---- */

/* $1 limit, $2 lease in seconds → the oldest unsent outbox rows no other
 * relay holds, with their order's snapshot, ORDERS_OUTBOX_COL_*; they are
 * held for the lease */
#define ORDERS_SQL_OUTBOX_BATCH "orders_outbox_batch"
enum
{
  ORDERS_OUTBOX_COL_ID,
  ORDERS_OUTBOX_COL_TYPE,
  ORDERS_OUTBOX_COL_ORDER_ID,
  ORDERS_OUTBOX_COL_BOOK_ID,
  ORDERS_OUTBOX_COL_BOOK_TITLE,
  ORDERS_OUTBOX_COL_BOOK_AUTHOR,
  ORDERS_OUTBOX_COL_QUANTITY,
  ORDERS_OUTBOX_COL_UNIT_PRICE, /* text, two decimals */
  ORDERS_OUTBOX_COL_TOTAL_PRICE,
  ORDERS_OUTBOX_COL_CREATED_AT,  /* RFC 3339 UTC */
  ORDERS_OUTBOX_COL_TRACEPARENT, /* NULL for rows from before 0003 */
  ORDERS_OUTBOX_COL_TRACESTATE,  /* NULL when none */
  ORDERS_OUTBOX_N_COLS
};
/* $1 ids published, $2 ids not published, as array literals "{1,2,3}" →
 * number of rows marked sent; the others are released at once */
#define ORDERS_SQL_OUTBOX_MARK_SENT "orders_outbox_mark_sent"
/* → unsent rows, age in seconds of the oldest (0 when none) */
#define ORDERS_SQL_OUTBOX_STATS "orders_outbox_stats"
/* $1 retention in hours → number of sent rows removed */
#define ORDERS_SQL_OUTBOX_PURGE "orders_outbox_purge"

/* ---- status changes from the worker ---- */

/* $1 order id, $2 new status (processing, completed, failed), $3 reason
 * (kept with failed only), $4 event id (may be NULL), $5 status entry id
 * → applied ("t"/"f"), the status before (NULL: no such order).
 * Applies only along pending → processing → completed|failed (and
 * pending → completed|failed), adding one history row per applied change;
 * a repeated or late change updates nothing. */
#define ORDERS_SQL_APPLY_STATUS "orders_apply_status"

/* Every statement above, for bs_db_pool_new(). */
extern const BsDbStatement orders_store_statements[];

G_END_DECLS
