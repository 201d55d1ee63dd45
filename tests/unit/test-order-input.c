/* test-order-input.c: POST /v1/orders bodies, their fingerprint, and the
 * Idempotency-Key header. */
#include "orders-order.h"

#include "bs-error.h"
#include "bs-idempotency-key.h"
#include "bs-json.h"
#include "bs-test.h"

#include <glib.h>
#include <string.h>

static gboolean
parse (const char *json, OrdersOrderInput *input, GError **error)
{
  g_autoptr (JsonObject) object = bs_json_parse_object (json, strlen (json), error);

  if (object == NULL)
    {
      g_prefix_error (error, "test body did not parse: ");
      return FALSE;
    }
  return orders_order_input_parse (object, input, error);
}

static void
check_accepted (const char *json, gint64 book_id, gint64 quantity)
{
  OrdersOrderInput input = { -1, -1 };
  g_autoptr (GError) error = NULL;

  if (!parse (json, &input, &error))
    bs_test_fail ("%s rejected: %s", json, error->message);
  else if (input.book_id != book_id || input.quantity != quantity)
    bs_test_fail ("%s read as book_id %" G_GINT64_FORMAT ", quantity %" G_GINT64_FORMAT, json,
                  input.book_id, input.quantity);
}

/* Rejected with BS_ERROR_VALIDATION and a message that names @field. */
static void
check_rejected (const char *json, const char *field)
{
  OrdersOrderInput input = { 0 };
  g_autoptr (GError) error = NULL;

  if (parse (json, &input, &error))
    bs_test_fail ("%s accepted as book_id %" G_GINT64_FORMAT ", quantity %" G_GINT64_FORMAT, json,
                  input.book_id, input.quantity);
  else if (!g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
    bs_test_fail ("%s: expected BS_ERROR_VALIDATION, got %s", json,
                  error != NULL ? error->message : "no error");
  else if (strstr (error->message, field) == NULL)
    bs_test_fail ("%s: message \"%s\" does not name %s", json, error->message, field);
}

static void
test_parse_valid (void)
{
  check_accepted ("{\"book_id\":1,\"quantity\":1}", 1, 1);
  check_accepted ("{\"quantity\":3,\"book_id\":42}", 42, 3);
  check_accepted (" {\n \"book_id\" : 7 ,\t\"quantity\" : 10000 } ", 7, 10000);
  check_accepted ("{\"book_id\":9223372036854775807,\"quantity\":9999}", G_MAXINT64, 9999);
}

static void
test_parse_required (void)
{
  check_rejected ("{}", "book_id");
  check_rejected ("{\"quantity\":1}", "book_id");
  check_rejected ("{\"book_id\":1}", "quantity");
}

static void
test_parse_unknown_members (void)
{
  check_rejected ("{\"book_id\":1,\"quantity\":1,\"price\":\"1.00\"}", "price");
  check_rejected ("{\"book_id\":1,\"quantity\":1,\"note\":null}", "note");
  check_rejected ("{\"bookId\":1,\"quantity\":1}", "bookId");
  check_rejected ("{\"Book_id\":1,\"quantity\":1}", "Book_id");
  check_rejected ("{\"book_id\":1,\"quantity \":1}", "quantity ");
  check_rejected ("{\"\":0,\"book_id\":1,\"quantity\":1}", "\"\"");
}

static void
test_parse_book_id_types (void)
{
  static const char *const values[] = {
    "\"1\"", "\"abc\"", "1.0",  "1.5", "1e2",
    "true",  "false",   "null", "[]",  "[1]",
    "{}",    "-1",      "0",    "-0",  "-9223372036854775808",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"book_id\":%s,\"quantity\":1}", values[i]);
      check_rejected (json, "book_id");
    }
}

static void
test_parse_quantity_types (void)
{
  static const char *const values[] = {
    "\"1\"",
    "\"abc\"",
    "1.0",
    "2.5",
    "1e2",
    "true",
    "false",
    "null",
    "[]",
    "[1]",
    "{}",
    "-1",
    "0",
    "-0",
    "10001",
    "100000",
    "65537",
    "4294967297",
    "9223372036854775807",
    "-9223372036854775808",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"book_id\":1,\"quantity\":%s}", values[i]);
      check_rejected (json, "quantity");
    }
}

static void
test_parse_quantity_range (void)
{
  check_accepted ("{\"book_id\":1,\"quantity\":1}", 1, 1);
  check_accepted ("{\"book_id\":1,\"quantity\":9999}", 1, 9999);
  check_accepted ("{\"book_id\":1,\"quantity\":10000}", 1, ORDERS_QUANTITY_MAX);
  check_rejected ("{\"book_id\":1,\"quantity\":10001}", "quantity");
  check_rejected ("{\"book_id\":1,\"quantity\":0}", "quantity");
}

static char *
fingerprint_of (const char *json)
{
  OrdersOrderInput input = { 0 };
  g_autoptr (GError) error = NULL;

  if (!parse (json, &input, &error))
    {
      bs_test_fail ("%s rejected: %s", json, error->message);
      return g_strdup ("");
    }
  return orders_order_input_fingerprint (&input);
}

static gboolean
is_sha256_hex (const char *text)
{
  if (strlen (text) != 64)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

static void
test_fingerprint (void)
{
  OrdersOrderInput a = { 1, 2 };
  OrdersOrderInput a2 = { 1, 2 };
  OrdersOrderInput other_book = { 2, 2 };
  OrdersOrderInput other_quantity = { 1, 3 };
  OrdersOrderInput swapped = { 2, 1 };
  g_autofree char *fa = orders_order_input_fingerprint (&a);
  g_autofree char *fa2 = orders_order_input_fingerprint (&a2);
  g_autofree char *fb = orders_order_input_fingerprint (&other_book);
  g_autofree char *fq = orders_order_input_fingerprint (&other_quantity);
  g_autofree char *fs = orders_order_input_fingerprint (&swapped);

  g_assert_true (is_sha256_hex (fa));
  g_assert_true (is_sha256_hex (fb));
  g_assert_true (is_sha256_hex (fq));
  g_assert_cmpstr (fa, ==, fa2);
  g_assert_cmpstr (fa, !=, fb);
  g_assert_cmpstr (fa, !=, fq);
  g_assert_cmpstr (fa, !=, fs);
  g_assert_cmpstr (fb, !=, fq);
}

/* Fingerprints are stored with idempotency keys: a change of the canonical
 * form would make every retry of an earlier request a conflict. */
static void
test_fingerprint_stable (void)
{
  OrdersOrderInput a = { 1, 2 };
  OrdersOrderInput b = { G_MAXINT64, ORDERS_QUANTITY_MAX };
  g_autofree char *fa = orders_order_input_fingerprint (&a);
  g_autofree char *fb = orders_order_input_fingerprint (&b);

  /* sha256 ("book_id=1\nquantity=2\n") */
  g_assert_cmpstr (fa, ==, "5f7ecce45c4883ee3a44d99f8ac591c8c592a81bd0d91606f734dd1a94b1fe89");
  /* sha256 ("book_id=9223372036854775807\nquantity=10000\n") */
  g_assert_cmpstr (fb, ==, "7d2a33ddf2f363e85d4ffbc00adf888a95d71e7abe812d5233e3798b269dcc2f");
}

/* Equal requests, whatever their JSON spelling. */
static void
test_fingerprint_spelling (void)
{
  g_autofree char *f1 = fingerprint_of ("{\"book_id\":5,\"quantity\":2}");
  g_autofree char *f2 = fingerprint_of ("{\"quantity\":2,\"book_id\":5}");
  g_autofree char *f3 = fingerprint_of ("\n{ \"book_id\" : 5 , \"quantity\" : 2 }\n");
  g_autofree char *f4 = fingerprint_of ("{\"book_id\":6,\"quantity\":2}");
  g_autofree char *f5 = fingerprint_of ("{\"book_id\":5,\"quantity\":1}");

  g_assert_cmpstr (f1, ==, f2);
  g_assert_cmpstr (f1, ==, f3);
  g_assert_cmpstr (f1, !=, f4);
  g_assert_cmpstr (f1, !=, f5);
}

/* Different inputs, different fingerprints (no collision in a small grid). */
static void
test_fingerprint_distinct (void)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  static const gint64 book_ids[] = { 1, 2, 10, 11, 12, 21, 110, G_MAXINT64 };
  static const gint64 quantities[] = { 1, 2, 10, 11, 12, 21, 110, ORDERS_QUANTITY_MAX };

  for (gsize i = 0; i < G_N_ELEMENTS (book_ids); i++)
    for (gsize j = 0; j < G_N_ELEMENTS (quantities); j++)
      {
        OrdersOrderInput input = { book_ids[i], quantities[j] };
        char *fingerprint = orders_order_input_fingerprint (&input);

        if (!g_hash_table_add (seen, fingerprint))
          bs_test_fail ("book_id %" G_GINT64_FORMAT ", quantity %" G_GINT64_FORMAT
                        ": fingerprint seen before",
                        input.book_id, input.quantity);
      }
  g_assert_cmpuint (g_hash_table_size (seen), ==,
                    G_N_ELEMENTS (book_ids) * G_N_ELEMENTS (quantities));
}

static void
check_key_ok (const char *key, const char *what)
{
  g_autoptr (GError) error = NULL;

  if (!bs_idempotency_key_check (key, &error))
    bs_test_fail ("key %s rejected: %s", what, error != NULL ? error->message : "no error");
  else if (error != NULL)
    bs_test_fail ("key %s accepted but an error set", what);
}

static void
check_key_rejected (const char *key, const char *what)
{
  g_autoptr (GError) error = NULL;

  if (bs_idempotency_key_check (key, &error))
    bs_test_fail ("key %s accepted", what);
  else if (!g_error_matches (error, BS_ERROR, BS_ERROR_VALIDATION))
    bs_test_fail ("key %s: expected BS_ERROR_VALIDATION, got %s", what,
                  error != NULL ? error->message : "no error");
  else if (strstr (error->message, "Idempotency-Key") == NULL)
    bs_test_fail ("key %s: message \"%s\" does not name the header", what, error->message);
}

static void
test_key_lengths (void)
{
  g_autofree char *k255 = g_strnfill (BS_IDEMPOTENCY_KEY_MAX, 'k');
  g_autofree char *k256 = g_strnfill (BS_IDEMPOTENCY_KEY_MAX + 1, 'k');
  g_autofree char *k4096 = g_strnfill (4096, 'k');

  check_key_ok (NULL, "NULL");
  check_key_ok ("k", "of 1 character");
  check_key_ok (k255, "of 255 characters");
  check_key_rejected ("", "\"\"");
  check_key_rejected (k256, "of 256 characters");
  check_key_rejected (k4096, "of 4096 characters");

  /* the error is optional */
  g_assert_true (bs_idempotency_key_check (NULL, NULL));
  g_assert_false (bs_idempotency_key_check ("", NULL));
  g_assert_false (bs_idempotency_key_check (k256, NULL));
}

static void
test_key_characters (void)
{
  char visible[0x7e - 0x21 + 2];
  gsize n = 0;

  check_key_ok ("550e8400-e29b-41d4-a716-446655440000", "a UUID");
  check_key_ok ("order:2024/06/01#1?x=y&z=~!", "of punctuation");

  /* all of 0x21..0x7e, together and one by one */
  for (int c = 0x21; c <= 0x7e; c++)
    {
      char one[] = { (char) c, '\0' };
      g_autofree char *what = g_strdup_printf ("0x%02x", (guint) c);

      visible[n++] = (char) c;
      check_key_ok (one, what);
    }
  visible[n] = '\0';
  check_key_ok (visible, "of every visible character");

  check_key_rejected (" ", "\" \"");
  check_key_rejected ("a b", "with a space");
  check_key_rejected (" ab", "with a leading space");
  check_key_rejected ("ab ", "with a trailing space");
  check_key_rejected ("a\tb", "with a tab");
  check_key_rejected ("a\x7f", "with DEL");
  check_key_rejected ("caf\xc3\xa9", "with UTF-8 é");
  check_key_rejected ("\xff", "of 0xff");
  check_key_rejected ("a\r\nX-Injected: 1", "with CR LF");

  /* every other byte, first, in the middle and last */
  for (int c = 0x01; c <= 0xff; c++)
    {
      char first[] = { (char) c, 'a', 'b', '\0' };
      char middle[] = { 'a', (char) c, 'b', '\0' };
      char last[] = { 'a', 'b', (char) c, '\0' };
      g_autofree char *what = g_strdup_printf ("with byte 0x%02x", (guint) c);

      if (c >= 0x21 && c <= 0x7e)
        continue;
      check_key_rejected (first, what);
      check_key_rejected (middle, what);
      check_key_rejected (last, what);
    }
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  g_test_add_func ("/orders/input/parse/valid", test_parse_valid);
  g_test_add_func ("/orders/input/parse/required", test_parse_required);
  g_test_add_func ("/orders/input/parse/unknown-members", test_parse_unknown_members);
  g_test_add_func ("/orders/input/parse/book-id-types", test_parse_book_id_types);
  g_test_add_func ("/orders/input/parse/quantity-types", test_parse_quantity_types);
  g_test_add_func ("/orders/input/parse/quantity-range", test_parse_quantity_range);
  g_test_add_func ("/orders/input/fingerprint/differs", test_fingerprint);
  g_test_add_func ("/orders/input/fingerprint/stable", test_fingerprint_stable);
  g_test_add_func ("/orders/input/fingerprint/spelling", test_fingerprint_spelling);
  g_test_add_func ("/orders/input/fingerprint/distinct", test_fingerprint_distinct);
  g_test_add_func ("/orders/idempotency-key/lengths", test_key_lengths);
  g_test_add_func ("/orders/idempotency-key/characters", test_key_characters);

  return g_test_run ();
}
