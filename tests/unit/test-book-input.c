/* test-book-input.c: validation of POST/PUT /v1/books bodies, and rows to JSON. */
#include "books-book.h"

#include "bs-error.h"
#include "bs-json.h"

#include <libpq-fe.h>

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

/* A one-row result with the columns of BOOKS_BOOK_COLUMNS; NULL is SQL NULL. */
static PGresult *
book_row (const char *const values[BOOKS_BOOK_N_COLUMNS])
{
  PGresult *result = PQmakeEmptyPGresult (NULL, PGRES_TUPLES_OK);
  PGresAttDesc attrs[BOOKS_BOOK_N_COLUMNS] = { 0 };
  static const char *const names[]
      = { "id", "title", "author", "description", "price", "active", "created_at", "updated_at" };

  for (int i = 0; i < BOOKS_BOOK_N_COLUMNS; i++)
    {
      attrs[i].name = (char *) names[i];
      attrs[i].typlen = -1;
    }
  g_assert_true (PQsetResultAttrs (result, BOOKS_BOOK_N_COLUMNS, attrs));
  for (int i = 0; i < BOOKS_BOOK_N_COLUMNS; i++)
    g_assert_true (PQsetvalue (result, 0, i, (char *) values[i],
                               values[i] != NULL ? (int) strlen (values[i]) : -1));
  return result;
}

/* What the reply was when built as a json-glib tree: the reference. */
static char *
book_via_json_glib (const char *const v[BOOKS_BOOK_N_COLUMNS], const char *price)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  static const char *const names[] = { "title", "author", "description" };

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_int_value (builder, g_ascii_strtoll (v[0], NULL, 10));
  for (int i = 0; i < 3; i++)
    {
      json_builder_set_member_name (builder, names[i]);
      if (v[1 + i] == NULL)
        json_builder_add_null_value (builder);
      else
        json_builder_add_string_value (builder, v[1 + i]);
    }
  json_builder_set_member_name (builder, "price");
  json_builder_add_string_value (builder, price);
  json_builder_set_member_name (builder, "active");
  json_builder_add_boolean_value (builder, g_str_equal (v[5], "t"));
  json_builder_set_member_name (builder, "created_at");
  json_builder_add_string_value (builder, v[6]);
  json_builder_set_member_name (builder, "updated_at");
  json_builder_add_string_value (builder, v[7]);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return bs_json_to_string (root, NULL);
}

static void
test_book_json (void)
{
  static const struct
  {
    const char *values[BOOKS_BOOK_N_COLUMNS];
    const char *price; /* as answered */
  } cases[] = {
    { { "1", "Dune", "Frank Herbert", "A desert planet", "15.99", "t",
        "2026-11-25T17:58:44.662393Z", "2026-11-25T17:58:44.662393Z" },
      "15.99" },
    { { "9223372036854775807", "Caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x93\x9a",
        "\"quoted\" \\ back <b>&amp;</b>", NULL, "0.00", "f", "2026-01-01T00:00:00.000000Z",
        "2026-01-02T00:00:00.000000Z" },
      "0.00" },
    { { "42", "tab\tlf\ncr\rbs\bff\f", "\x01\x02\x1e\x1f\x7f",
        "\xe2\x80\xa8 \xe2\x80\xa9 soft\xc2\xadhyphen", "99999999.99", "t",
        "2026-11-25T17:58:44.000000Z", "2026-11-25T17:58:44.000001Z" },
      "99999999.99" },
    { { "7", "", "", "", "1.5", "t", "2026-11-25T17:58:44.662393Z", "2026-11-25T17:58:44.662393Z" },
      "1.50" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (PGresult) result = book_row (cases[i].values);
      g_autoptr (GString) out = g_string_new ("[");
      g_autofree char *expected = book_via_json_glib (cases[i].values, cases[i].price);

      books_book_append_json (out, result, 0, 0);
      g_assert_cmpstr (out->str + 1, ==, expected);
    }
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
  g_test_add_func ("/books/json/row", test_book_json);
  return g_test_run ();
}
