/* books-book.c: validation of client input, and rows to JSON. */
#include "books-book.h"

#include "bs-error.h"
#include "bs-json-writer.h"
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
append_text (GString *out, const char *name, const PGresult *result, int row, int col)
{
  g_string_append (out, name);
  if (PQgetisnull (result, row, col))
    g_string_append (out, "null");
  else
    bs_json_append_string_glib (out, PQgetvalue (result, row, col), PQgetlength (result, row, col));
}

void
books_book_append_json (GString *out, const PGresult *result, int row, int first_col)
{
  const char *price_text = PQgetvalue (result, row, first_col + 4);
  gint64 cents = 0;
  g_autofree char *price = NULL;

  /* PostgreSQL renders numeric(10,2) as "15.99": reparse so what we answer
   * is always our own canonical form */
  if (bs_money_parse (price_text, &cents, NULL))
    price = bs_money_format (cents);

  g_string_append_printf (out, "{\"id\":%" G_GINT64_FORMAT,
                          g_ascii_strtoll (PQgetvalue (result, row, first_col), NULL, 10));
  append_text (out, ",\"title\":", result, row, first_col + 1);
  append_text (out, ",\"author\":", result, row, first_col + 2);
  append_text (out, ",\"description\":", result, row, first_col + 3);
  g_string_append (out, ",\"price\":");
  bs_json_append_string_glib (out, price != NULL ? price : price_text, -1);
  g_string_append (out,
                   g_str_equal (PQgetvalue (result, row, first_col + BOOKS_BOOK_COL_ACTIVE), "t")
                       ? ",\"active\":true"
                       : ",\"active\":false");
  append_text (out, ",\"created_at\":", result, row, first_col + 6);
  append_text (out, ",\"updated_at\":", result, row, first_col + 7);
  g_string_append_c (out, '}');
}
