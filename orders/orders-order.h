/* orders-order.h: an order as the API reads and writes it. */
#pragma once

#include "bs-db.h"
#include "bs-json-writer.h"

#include <json-glib/json-glib.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

#define ORDERS_QUANTITY_MAX 10000

/* What a client sends to create an order. */
typedef struct
{
  gint64 book_id;
  gint64 quantity;
} OrdersOrderInput;

/* book_id a positive integer, quantity 1..ORDERS_QUANTITY_MAX, both
 * required, nothing else; BS_ERROR_VALIDATION says what is wrong. */
gboolean orders_order_input_parse (JsonObject *object, OrdersOrderInput *input, GError **error);

/* The SHA-256 (hex) of the canonical form of @input: equal for equal
 * requests whatever their JSON spelling. */
char *orders_order_input_fingerprint (const OrdersOrderInput *input);

/* The columns every order query selects, in this order. */
#define ORDERS_ORDER_COLUMNS                                                                       \
  "id, book_id, book_title, book_author, quantity, unit_price::text, total_price::text, "          \
  "status, " BS_SQL_TIMESTAMP ("created_at") ", status_reason"
#define ORDERS_ORDER_N_COLUMNS 10

/* Write the order in columns @first_col.. of @row as a JSON object, money
 * as exact numbers with two decimals; "status_reason" only when the order
 * failed. */
void orders_order_write_json (BsJsonWriter *writer, const PGresult *result, int row, int first_col);

G_END_DECLS
