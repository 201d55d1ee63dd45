/* orders-store.c: every statement is parameterised and prepared once per connection;
 * the reads are marked, so that the pool pipelines them. */
#include "orders-store.h"

#include "orders-order.h"

#define INSERT_ORDER                                                                               \
  "INSERT INTO orders (book_id, book_title, book_author, quantity, unit_price, total_price"

#define ORDERS_CREATED_AT BS_SQL_TIMESTAMP ("o.created_at")

/* after a CTE "o" that inserted the order: its outbox row with the trace
 * context ($7, $8), and the order */
#define WITH_OUTBOX                                                                                \
  ", x AS (INSERT INTO outbox (order_id, event_type, traceparent, tracestate) "                    \
  "SELECT id, 'order.created', $7::text, $8::text FROM o) "                                        \
  "SELECT " ORDERS_ORDER_COLUMNS " FROM o"

const BsDbStatement orders_store_statements[] = {
  { ORDERS_SQL_LIST,
    "SELECT t.total, o.* FROM (SELECT count(*) AS total FROM orders) t "
    "LEFT JOIN LATERAL (SELECT " ORDERS_ORDER_COLUMNS " FROM orders "
    "ORDER BY created_at DESC, id DESC LIMIT $1::bigint OFFSET $2::bigint) o ON true",
    .read_only = TRUE },
  { ORDERS_SQL_GET, "SELECT " ORDERS_ORDER_COLUMNS " FROM orders WHERE id = $1::bigint",
    .read_only = TRUE },
  /* one statement, so one transaction: no order without its event, no
   * event without its order */
  { ORDERS_SQL_CREATE,
    "WITH o AS (" INSERT_ORDER ") VALUES ($1::bigint, $2::text, $3::text, $4::integer, "
    "$5::numeric, $6::numeric) RETURNING *)" WITH_OUTBOX },
  /* ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
   * commit, then inserts no key and so no order: exactly one order per key */
  { ORDERS_SQL_CREATE_WITH_KEY,
    "WITH k AS (INSERT INTO idempotency_keys (key, request_hash) VALUES ($9::text, $10::text) "
    "ON CONFLICT (key) DO NOTHING RETURNING key), o AS (" INSERT_ORDER ", idempotency_key) "
    "SELECT $1::bigint, $2::text, $3::text, $4::integer, $5::numeric, $6::numeric, k.key "
    "FROM k RETURNING *)" WITH_OUTBOX },
  { ORDERS_SQL_FIND_KEY,
    "SELECT k.request_hash, o.* FROM idempotency_keys k "
    "LEFT JOIN LATERAL (SELECT " ORDERS_ORDER_COLUMNS " FROM orders "
    "WHERE idempotency_key = k.key) o ON true WHERE k.key = $1::text",
    .read_only = TRUE },
  { ORDERS_SQL_PURGE_KEYS,
    "WITH d AS (DELETE FROM idempotency_keys "
    "WHERE created_at < now() - make_interval(hours => $1::integer) RETURNING 1) "
    "SELECT count(*) FROM d" },
  /* SKIP LOCKED and the lease: relays of several instances take disjoint
   * rows instead of publishing the same ones */
  { ORDERS_SQL_OUTBOX_BATCH,
    "WITH c AS (UPDATE outbox SET claimed_until = now() + make_interval(secs => $2::integer) "
    "WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL "
    "AND (claimed_until IS NULL OR claimed_until < now()) "
    "ORDER BY id LIMIT $1::integer FOR UPDATE SKIP LOCKED) "
    "RETURNING id, event_type, order_id, traceparent, tracestate) "
    "SELECT c.id, c.event_type, o.id, o.book_id, o.book_title, o.book_author, o.quantity, "
    "o.unit_price::text, o.total_price::text, " ORDERS_CREATED_AT ", c.traceparent, c.tracestate "
    "FROM c JOIN orders o ON o.id = c.order_id ORDER BY c.id" },
  { ORDERS_SQL_OUTBOX_MARK_SENT,
    "WITH s AS (UPDATE outbox SET sent_at = now() "
    "WHERE id = ANY ($1::bigint[]) AND sent_at IS NULL RETURNING 1), "
    "r AS (UPDATE outbox SET claimed_until = NULL WHERE id = ANY ($2::bigint[]) "
    "AND sent_at IS NULL) SELECT count(*) FROM s" },
  { ORDERS_SQL_OUTBOX_STATS,
    "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL), "
    "COALESCE((SELECT extract(epoch FROM now() - created_at)::bigint FROM outbox "
    "WHERE sent_at IS NULL ORDER BY id LIMIT 1), 0)",
    .read_only = TRUE },
  { ORDERS_SQL_OUTBOX_PURGE,
    "WITH d AS (DELETE FROM outbox "
    "WHERE sent_at < now() - make_interval(hours => $1::integer) RETURNING 1) "
    "SELECT count(*) FROM d" },
  /* The allowed previous states are in the UPDATE's WHERE: a concurrent
   * change of the same order makes PostgreSQL re-check them on the row it
   * committed, so two consumers cannot both apply "completed". The last
   * sub-select reads the statement's snapshot: the status before. */
  { ORDERS_SQL_APPLY_STATUS,
    "WITH u AS (UPDATE orders SET status = $2::text, "
    "status_reason = CASE WHEN $2::text = 'failed' THEN $3::text END "
    "WHERE id = $1::bigint AND status = ANY (CASE $2::text "
    "WHEN 'processing' THEN ARRAY['pending'] "
    "WHEN 'completed' THEN ARRAY['pending', 'processing'] "
    "WHEN 'failed' THEN ARRAY['pending', 'processing'] END) "
    "RETURNING id, status, status_reason), "
    "h AS (INSERT INTO order_status_history (order_id, status, reason, event_id, entry_id) "
    "SELECT id, status, status_reason, $4::text, $5::text FROM u) "
    "SELECT EXISTS (SELECT 1 FROM u), (SELECT status FROM orders WHERE id = $1::bigint)" },
  { NULL, NULL },
};
