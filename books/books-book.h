/* books-book.h: a book as the API reads and writes it. */
#pragma once

#include "bs-db.h"

#include <json-glib/json-glib.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

#define BOOKS_TITLE_MAX 500
#define BOOKS_AUTHOR_MAX 300
#define BOOKS_DESCRIPTION_MAX 10000

/* The fields a client may send; the has_* flags tell which were sent. */
typedef struct
{
  char *title;
  char *author;
  char *description; /* NULL with has_description: clear it */
  gboolean has_description;
  gint64 price_cents;
  gboolean has_price;
} BooksBookInput;

void books_book_input_clear (BooksBookInput *input);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BooksBookInput, books_book_input_clear)

/* Validate a create (@partial FALSE: title, author, price required) or an
 * update (@partial TRUE: any non-empty subset). BS_ERROR_VALIDATION says
 * which field is wrong and why. */
gboolean books_book_input_parse (JsonObject *object, gboolean partial, BooksBookInput *input,
                                 GError **error);

/* The columns every book query selects, in this order. */
#define BOOKS_BOOK_COLUMNS                                                                         \
  "id, title, author, description, price::text, active, " BS_SQL_TIMESTAMP (                       \
      "created_at") ", " BS_SQL_TIMESTAMP ("updated_at")
#define BOOKS_BOOK_N_COLUMNS 8
#define BOOKS_BOOK_COL_ACTIVE 5

/* Append the book at @row, columns starting at @first_col, to @out as a JSON
 * object: written directly (no tree), byte for byte what json-glib's
 * generator wrote for it before. */
void books_book_append_json (GString *out, const PGresult *result, int row, int first_col);

G_END_DECLS
