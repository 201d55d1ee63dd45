/* orders-order.c: order input validation and the order's JSON form. */
#include "orders-order.h"

#include "bs-error.h"
#include "bs-json.h"
#include "bs-money.h"

gboolean
orders_order_input_parse (JsonObject *object, OrdersOrderInput *input, GError **error)
{
  static const char *const allowed[] = { "book_id", "quantity", NULL };
  gboolean has_book_id = FALSE, has_quantity = FALSE;

  if (!bs_json_check_members (object, allowed, error)
      || !bs_json_get_int (object, "book_id", 1, G_MAXINT64, &has_book_id, &input->book_id, error)
      || !bs_json_get_int (object, "quantity", 1, ORDERS_QUANTITY_MAX, &has_quantity,
                           &input->quantity, error))
    return FALSE;
  if (!has_book_id || !has_quantity)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s is required",
                   !has_book_id ? "book_id" : "quantity");
      return FALSE;
    }
  return TRUE;
}

char *
orders_order_input_fingerprint (const OrdersOrderInput *input)
{
  g_autofree char *canonical
      = g_strdup_printf ("book_id=%" G_GINT64_FORMAT "\nquantity=%" G_GINT64_FORMAT "\n",
                         input->book_id, input->quantity);

  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, canonical, -1);
}

static void
write_money (BsJsonWriter *writer, const char *name, const char *stored)
{
  gint64 cents = 0;

  bs_json_writer_member (writer, name);
  if (bs_money_parse_stored (stored, &cents))
    bs_json_writer_money (writer, cents);
  else
    bs_json_writer_null (writer); /* cannot happen with NUMERIC(p,2) columns */
}

void
orders_order_write_json (BsJsonWriter *writer, const PGresult *result, int row, int first_col)
{
#define COL(n) PQgetvalue (result, row, first_col + (n))
  bs_json_writer_begin_object (writer);
  bs_json_writer_member (writer, "id");
  bs_json_writer_int (writer, g_ascii_strtoll (COL (0), NULL, 10));
  bs_json_writer_member (writer, "book_id");
  bs_json_writer_int (writer, g_ascii_strtoll (COL (1), NULL, 10));
  bs_json_writer_member (writer, "book_title");
  bs_json_writer_string (writer, COL (2));
  bs_json_writer_member (writer, "book_author");
  bs_json_writer_string (writer, COL (3));
  bs_json_writer_member (writer, "quantity");
  bs_json_writer_int (writer, g_ascii_strtoll (COL (4), NULL, 10));
  write_money (writer, "unit_price", COL (5));
  write_money (writer, "total_price", COL (6));
  bs_json_writer_member (writer, "status");
  bs_json_writer_string (writer, COL (7));
  bs_json_writer_member (writer, "created_at");
  bs_json_writer_string (writer, COL (8));
  if (g_str_equal (COL (7), "failed"))
    {
      bs_json_writer_member (writer, "status_reason");
      if (PQgetisnull (result, row, first_col + 9))
        bs_json_writer_null (writer);
      else
        bs_json_writer_string (writer, COL (9));
    }
  bs_json_writer_end_object (writer);
#undef COL
}
