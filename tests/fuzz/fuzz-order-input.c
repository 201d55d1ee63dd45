/* fuzz-order-input.c: libFuzzer target for the request-body path of
 * POST /v1/orders: bs_json_parse_object() then orders_order_input_parse()
 * and the fingerprint; the same bytes also go through the Idempotency-Key
 * check. */
#include "orders-order.h"

#include "bs-error.h"
#include "bs-idempotency-key.h"
#include "bs-json-writer.h"
#include "bs-json.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gboolean
is_sha256_hex (const char *text)
{
  if (text == NULL || strlen (text) != 64)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

/* The accepted input written back as canonical JSON reads as the same input. */
static void
check_round_trip (const OrdersOrderInput *input, const char *fingerprint)
{
  g_autoptr (BsJsonWriter) writer = bs_json_writer_new ();
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (JsonObject) object = NULL;
  g_autofree char *again_fingerprint = NULL;
  OrdersOrderInput again = { 0 };
  gsize len = 0;
  const char *text;

  bs_json_writer_begin_object (writer);
  bs_json_writer_member (writer, "quantity");
  bs_json_writer_int (writer, input->quantity);
  bs_json_writer_member (writer, "book_id");
  bs_json_writer_int (writer, input->book_id);
  bs_json_writer_end_object (writer);
  bytes = bs_json_writer_free_to_bytes (g_steal_pointer (&writer));
  text = g_bytes_get_data (bytes, &len);

  object = bs_json_parse_object (text, len, NULL);
  if (object == NULL || !orders_order_input_parse (object, &again, NULL)
      || again.book_id != input->book_id || again.quantity != input->quantity)
    __builtin_trap ();
  again_fingerprint = orders_order_input_fingerprint (&again);
  if (strcmp (again_fingerprint, fingerprint) != 0)
    __builtin_trap ();
}

/* What the header check must decide, written the obvious way. */
static void
check_idempotency_key (const uint8_t *data, size_t size)
{
  g_autofree char *key = g_strndup ((const char *) data, size); /* stops at a NUL */
  g_autoptr (GError) error = NULL;
  size_t len = strlen (key);
  gboolean expected = len >= 1 && len <= BS_IDEMPOTENCY_KEY_MAX;

  for (size_t i = 0; i < len; i++)
    if ((guchar) key[i] < 0x21 || (guchar) key[i] > 0x7e)
      expected = FALSE;
  if (bs_idempotency_key_check (key, &error) != expected)
    __builtin_trap ();
  if (expected != (error == NULL))
    __builtin_trap ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = NULL;
  g_autoptr (GError) parse_error = NULL;
  OrdersOrderInput input = { 0 };

  check_idempotency_key (data, size);

  object = bs_json_parse_object ((const char *) data, size, &error);
  if (object == NULL)
    {
      if (error == NULL || error->domain != BS_ERROR)
        __builtin_trap ();
      return 0;
    }

  if (orders_order_input_parse (object, &input, &parse_error))
    {
      g_autofree char *fingerprint = orders_order_input_fingerprint (&input);

      if (parse_error != NULL || input.book_id < 1 || input.quantity < 1
          || input.quantity > ORDERS_QUANTITY_MAX)
        __builtin_trap ();
      /* both members, nothing else */
      if (json_object_get_size (object) != 2 || !json_object_has_member (object, "book_id")
          || !json_object_has_member (object, "quantity"))
        __builtin_trap ();
      if (!is_sha256_hex (fingerprint))
        __builtin_trap ();
      check_round_trip (&input, fingerprint);
    }
  else if (parse_error == NULL || !g_error_matches (parse_error, BS_ERROR, BS_ERROR_VALIDATION)
           || parse_error->message == NULL || *parse_error->message == '\0')
    __builtin_trap ();
  return 0;
}
