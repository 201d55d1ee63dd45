/* test-book-input.c: validation of POST/PUT /v1/books bodies. */
#include "books-book.h"

#include "bs-error.h"
#include "bs-json.h"

#include <string.h>

static gboolean
parse (const char *json, gboolean partial, BooksBookInput *input, GError **error)
{
  g_autoptr (JsonObject) object = bs_json_parse_object (json, strlen (json), error);

  return object != NULL && books_book_input_parse (object, partial, input, error);
}

static void
assert_rejected (const char *json, gboolean partial, const char *needle)
{
  g_auto (BooksBookInput) input = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_false (parse (json, partial, &input, &error));
  g_assert_nonnull (error);
  g_assert_true (error->domain == BS_ERROR);
  g_assert_cmpuint (bs_error_http_status (error), ==, 400);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("%s: message \"%s\" does not mention \"%s\"", json, error->message, needle);
}

static void
test_create_valid (void)
{
  g_auto (BooksBookInput) input = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_true (parse ("{\"title\":\"  1984 \",\"author\":\"George Orwell\",\"price\":\"15.99\"}",
                        FALSE, &input, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (input.title, ==, "1984");
  g_assert_cmpstr (input.author, ==, "George Orwell");
  g_assert_false (input.has_description);
  g_assert_null (input.description);
  g_assert_true (input.has_price);
  g_assert_cmpint (input.price_cents, ==, 1599);
}

static void
test_create_number_price (void)
{
  g_auto (BooksBookInput) input = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_true (parse ("{\"title\":\"t\",\"author\":\"a\",\"price\":18.99,\"description\":null}",
                        FALSE, &input, &error));
  g_assert_cmpint (input.price_cents, ==, 1899);
  g_assert_true (input.has_description);
  g_assert_null (input.description);
}

static void
test_create_rejects (void)
{
  assert_rejected ("{\"author\":\"a\",\"price\":\"1\"}", FALSE, "title");
  assert_rejected ("{\"title\":\"t\",\"price\":\"1\"}", FALSE, "author");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\"}", FALSE, "price");
  assert_rejected ("{\"title\":\"   \",\"author\":\"a\",\"price\":\"1\"}", FALSE, "title");
  assert_rejected ("{\"title\":null,\"author\":\"a\",\"price\":\"1\"}", FALSE, "title");
  assert_rejected ("{\"title\":5,\"author\":\"a\",\"price\":\"1\"}", FALSE, "title");
  assert_rejected ("{\"title\":\"t\",\"author\":[],\"price\":\"1\"}", FALSE, "author");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\",\"price\":\"1.999\"}", FALSE, "decimal");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\",\"price\":-1}", FALSE, "negative");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\",\"price\":true}", FALSE, "price");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\",\"price\":null}", FALSE, "price");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\",\"price\":\"1\",\"extra\":1}", FALSE,
                   "extra");
  assert_rejected ("{\"title\":\"t\",\"author\":\"a\",\"price\":\"1\",\"description\":7}", FALSE,
                   "description");
}

/* docs/validation.md: the same rules for every text field and price spelling */
static void
test_input_rules (void)
{
  static const char *const fields[] = { "title", "author", "description" };
  static const char *const controls[]
      = { "\\u007f", "\\u0080", "\\u0085", "\\u009b", "\\u009f", "\\u0001", "\xc2\x85" };

  for (gsize f = 0; f < G_N_ELEMENTS (fields); f++)
    for (gsize c = 0; c < G_N_ELEMENTS (controls); c++)
      {
        g_autofree char *json
            = g_strdup_printf ("{\"title\":\"t\",\"author\":\"a\",\"price\":\"1\",\"%s\":\"x%sy\"}",
                               fields[f], controls[c]);
        assert_rejected (json, FALSE, "control");
        assert_rejected (json, FALSE, fields[f]);
      }
  assert_rejected ("{\"title\":\"\\u00a0\",\"author\":\"a\",\"price\":\"1\"}", FALSE, "blank");
  assert_rejected ("{\"title\":\"\\u200b\\ufeff\\u2060\"}", TRUE, "blank");
  assert_rejected ("{\"author\":\" \\u3000\\u200b \"}", TRUE, "blank");
  assert_rejected ("{\"price\":0.10000000000000000001}", TRUE, "price");
  assert_rejected ("{\"price\":\"0.10000000000000000001\"}", TRUE, "price");
  assert_rejected ("{\"price\":99999999999999999999}", TRUE, "out of range");

  {
    static const char *const zeros[] = { "-0", "-0.0", "\"-0\"", "\"-0.00\"", "-0e1" };

    for (gsize i = 0; i < G_N_ELEMENTS (zeros); i++)
      {
        g_auto (BooksBookInput) input = { 0 };
        g_autofree char *json = g_strdup_printf ("{\"price\":%s}", zeros[i]);

        g_assert_true (parse (json, TRUE, &input, NULL));
        g_assert_cmpint (input.price_cents, ==, 0);
      }
  }
}

static void
test_lengths (void)
{
  g_autoptr (GString) json = g_string_new ("{\"author\":\"a\",\"price\":\"1\",\"title\":\"");
  g_auto (BooksBookInput) input = { 0 };
  g_autoptr (GError) error = NULL;

  /* 500 characters of three bytes each: allowed (characters, not bytes) */
  for (int i = 0; i < BOOKS_TITLE_MAX; i++)
    g_string_append (json, "\xe3\x81\x82");
  g_string_append (json, "\"}");
  g_assert_true (parse (json->str, FALSE, &input, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_utf8_strlen (input.title, -1), ==, BOOKS_TITLE_MAX);

  g_string_truncate (json, json->len - 2);
  g_string_append (json, "x\"}");
  assert_rejected (json->str, FALSE, "500");
}

static void
test_update (void)
{
  g_auto (BooksBookInput) input = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_true (parse ("{\"price\":\"7\"}", TRUE, &input, &error));
  g_assert_null (input.title);
  g_assert_null (input.author);
  g_assert_true (input.has_price);
  g_assert_cmpint (input.price_cents, ==, 700);

  assert_rejected ("{}", TRUE, "nothing to update");
  assert_rejected ("{\"title\":\"\"}", TRUE, "title");
  assert_rejected ("{\"title\":null}", TRUE, "title");
  assert_rejected ("{\"active\":false}", TRUE, "active");
}

static void
test_update_clear_description (void)
{
  g_auto (BooksBookInput) input = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_true (parse ("{\"description\":null}", TRUE, &input, &error));
  g_assert_true (input.has_description);
  g_assert_null (input.description);
  g_assert_false (input.has_price);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/books/input/create-valid", test_create_valid);
  g_test_add_func ("/books/input/create-number-price", test_create_number_price);
  g_test_add_func ("/books/input/create-rejects", test_create_rejects);
  g_test_add_func ("/books/input/lengths", test_lengths);
  g_test_add_func ("/books/input/rules", test_input_rules);
  g_test_add_func ("/books/input/update", test_update);
  g_test_add_func ("/books/input/update-clear-description", test_update_clear_description);
  return g_test_run ();
}
