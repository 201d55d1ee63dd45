/* orders-store.h: the SQL of the orders tables, as prepared statements. */
#pragma once

#include "bs-db.h"

G_BEGIN_DECLS

/* $1 limit, $2 offset → total, then ORDERS_ORDER_COLUMNS (NULL when the page is empty) */
#define ORDERS_SQL_LIST "orders_list"
/* $1 id → ORDERS_ORDER_COLUMNS */
#define ORDERS_SQL_GET "orders_get"
/* $1 book_id, $2 title, $3 author, $4 quantity, $5 unit price, $6 total
 * → ORDERS_ORDER_COLUMNS */
#define ORDERS_SQL_CREATE "orders_create"
/* as ORDERS_SQL_CREATE, plus $7 idempotency key, $8 request hash → the new
 * order, or no row when the key exists already */
#define ORDERS_SQL_CREATE_WITH_KEY "orders_create_with_key"
/* $1 idempotency key → request_hash, then ORDERS_ORDER_COLUMNS; no row when unknown */
#define ORDERS_SQL_FIND_KEY "orders_find_key"
/* $1 retention in hours → number of keys removed */
#define ORDERS_SQL_PURGE_KEYS "orders_purge_keys"

/* Every statement above, for bs_db_pool_new(). */
extern const BsDbStatement orders_store_statements[];

G_END_DECLS
