/* books-book.c: validation of client input, and rows to JSON. */
#include "books-book.h"

#include "bs-error.h"
#include "bs-json.h"
#include "bs-money.h"

#include <stdlib.h>

void
books_book_input_clear (BooksBookInput *input)
{
  g_clear_pointer (&input->title, g_free);
  g_clear_pointer (&input->author, g_free);
  g_clear_pointer (&input->description, g_free);
  input->has_description = FALSE;
  input->has_price = FALSE;
  input->price_cents = 0;
}

static gboolean
require_present (JsonObject *object, const char *member, gboolean partial, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL && partial)
    return TRUE;
  if (node == NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s is required", member);
      return FALSE;
    }
  if (JSON_NODE_HOLDS_NULL (node))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must not be null", member);
      return FALSE;
    }
  return TRUE;
}

gboolean
books_book_input_parse (JsonObject *object, gboolean partial, BooksBookInput *input, GError **error)
{
  static const char *const allowed[] = { "title", "author", "description", "price", NULL };
  JsonNode *description;
  JsonNode *price;

  if (!bs_json_check_members (object, allowed, error))
    return FALSE;
  if (partial && json_object_get_size (object) == 0)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                           "nothing to update: send at least one of title, author, "
                           "description, price");
      return FALSE;
    }

  if (!require_present (object, "title", partial, error)
      || !bs_json_get_string (object, "title", FALSE, BOOKS_TITLE_MAX, &input->title, error)
      || !require_present (object, "author", partial, error)
      || !bs_json_get_string (object, "author", FALSE, BOOKS_AUTHOR_MAX, &input->author, error)
      || !require_present (object, "price", partial, error))
    return FALSE;

  description = json_object_get_member (object, "description");
  if (description != NULL)
    {
      input->has_description = TRUE;
      if (!JSON_NODE_HOLDS_NULL (description)
          && !bs_json_get_string (object, "description", TRUE, BOOKS_DESCRIPTION_MAX,
                                  &input->description, error))
        return FALSE;
    }

  price = json_object_get_member (object, "price");
  if (price != NULL)
    {
      if (!bs_money_from_json (price, &input->price_cents, error))
        return FALSE;
      input->has_price = TRUE;
    }
  return TRUE;
}

static void
add_text (JsonBuilder *builder, const char *name, const PGresult *result, int row, int col)
{
  json_builder_set_member_name (builder, name);
  if (PQgetisnull (result, row, col))
    json_builder_add_null_value (builder);
  else
    json_builder_add_string_value (builder, PQgetvalue (result, row, col));
}

JsonNode *
books_book_to_json (const PGresult *result, int row, int first_col)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  gint64 cents = 0;
  g_autofree char *price = NULL;

  /* PostgreSQL renders numeric(10,2) as "15.99": reparse so what we answer
   * is always our own canonical form */
  if (bs_money_parse (PQgetvalue (result, row, first_col + 4), &cents, NULL))
    price = bs_money_format (cents);
  else
    price = g_strdup (PQgetvalue (result, row, first_col + 4));

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_int_value (builder,
                              g_ascii_strtoll (PQgetvalue (result, row, first_col), NULL, 10));
  add_text (builder, "title", result, row, first_col + 1);
  add_text (builder, "author", result, row, first_col + 2);
  add_text (builder, "description", result, row, first_col + 3);
  json_builder_set_member_name (builder, "price");
  json_builder_add_string_value (builder, price);
  json_builder_set_member_name (builder, "active");
  json_builder_add_boolean_value (
      builder, g_str_equal (PQgetvalue (result, row, first_col + BOOKS_BOOK_COL_ACTIVE), "t"));
  add_text (builder, "created_at", result, row, first_col + 6);
  add_text (builder, "updated_at", result, row, first_col + 7);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}
