/* orders-store.c: every statement is parameterised and prepared once per connection. */
#include "orders-store.h"

#include "orders-order.h"

#define INSERT_ORDER                                                                               \
  "INSERT INTO orders (book_id, book_title, book_author, quantity, unit_price, total_price"

const BsDbStatement orders_store_statements[] = {
  { ORDERS_SQL_LIST,
    "SELECT t.total, o.* FROM (SELECT count(*) AS total FROM orders) t "
    "LEFT JOIN LATERAL (SELECT " ORDERS_ORDER_COLUMNS " FROM orders "
    "ORDER BY created_at DESC, id DESC LIMIT $1::bigint OFFSET $2::bigint) o ON true" },
  { ORDERS_SQL_GET, "SELECT " ORDERS_ORDER_COLUMNS " FROM orders WHERE id = $1::bigint" },
  { ORDERS_SQL_CREATE, INSERT_ORDER ") VALUES ($1::bigint, $2::text, $3::text, $4::integer, "
                                    "$5::numeric, $6::numeric) RETURNING " ORDERS_ORDER_COLUMNS },
  /* ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
   * commit, then inserts no key and so no order: exactly one order per key */
  { ORDERS_SQL_CREATE_WITH_KEY,
    "WITH k AS (INSERT INTO idempotency_keys (key, request_hash) VALUES ($7::text, $8::text) "
    "ON CONFLICT (key) DO NOTHING RETURNING key) " INSERT_ORDER ", idempotency_key) "
    "SELECT $1::bigint, $2::text, $3::text, $4::integer, $5::numeric, $6::numeric, k.key "
    "FROM k RETURNING " ORDERS_ORDER_COLUMNS },
  { ORDERS_SQL_FIND_KEY, "SELECT k.request_hash, o.* FROM idempotency_keys k "
                         "LEFT JOIN LATERAL (SELECT " ORDERS_ORDER_COLUMNS " FROM orders "
                         "WHERE idempotency_key = k.key) o ON true WHERE k.key = $1::text" },
  { ORDERS_SQL_PURGE_KEYS,
    "WITH d AS (DELETE FROM idempotency_keys "
    "WHERE created_at < now() - make_interval(hours => $1::integer) RETURNING 1) "
    "SELECT count(*) FROM d" },
  { NULL, NULL },
};
