/* books-store.c: every statement is parameterised and prepared once per connection;
 * the reads are marked, so that the pool pipelines them. */
#include "books-store.h"

#include "books-book.h"

const BsDbStatement books_store_statements[] = {
  { BOOKS_SQL_LIST,
    "SELECT t.total, b.* FROM (SELECT count(*) AS total FROM books WHERE active) t "
    "LEFT JOIN LATERAL (SELECT " BOOKS_BOOK_COLUMNS " FROM books WHERE active "
    "ORDER BY created_at DESC, id DESC LIMIT $1::bigint OFFSET $2::bigint) b ON true",
    .read_only = TRUE },
  { BOOKS_SQL_GET, "SELECT " BOOKS_BOOK_COLUMNS " FROM books WHERE id = $1::bigint",
    .read_only = TRUE },
  { BOOKS_SQL_CREATE,
    "INSERT INTO books (title, author, description, price) "
    "VALUES ($1::text, $2::text, $3::text, $4::numeric) RETURNING " BOOKS_BOOK_COLUMNS },
  { BOOKS_SQL_UPDATE, "WITH upd AS (UPDATE books SET"
                      " title = COALESCE($2::text, title),"
                      " author = COALESCE($3::text, author),"
                      " description = CASE WHEN $4::boolean THEN $5::text ELSE description END,"
                      " price = COALESCE($6::numeric, price)"
                      " WHERE id = $1::bigint AND active RETURNING " BOOKS_BOOK_COLUMNS ") "
                      "SELECT * FROM upd UNION ALL "
                      "SELECT " BOOKS_BOOK_COLUMNS " FROM books "
                      "WHERE id = $1::bigint AND NOT EXISTS (SELECT 1 FROM upd)" },
  { BOOKS_SQL_DELETE,
    "WITH del AS (UPDATE books SET active = false WHERE id = $1::bigint AND active RETURNING id) "
    "SELECT EXISTS (SELECT 1 FROM del), EXISTS (SELECT 1 FROM books WHERE id = $1::bigint)" },
  { NULL, NULL },
};
