/* books-store.h: the SQL of the books table, as prepared statements. */
#pragma once

#include "bs-db.h"

G_BEGIN_DECLS

/* $1 limit, $2 offset → total, then BOOKS_BOOK_COLUMNS (NULL when the page is empty) */
#define BOOKS_SQL_LIST "books_list"
/* $1 id → BOOKS_BOOK_COLUMNS, active or not */
#define BOOKS_SQL_GET "books_get"
/* $1 title, $2 author, $3 description, $4 price → BOOKS_BOOK_COLUMNS */
#define BOOKS_SQL_CREATE "books_create"
/* $1 id, $2 title?, $3 author?, $4 set description?, $5 description, $6 price?
 * → the updated row, or the unchanged row if deleted, or nothing */
#define BOOKS_SQL_UPDATE "books_update"
/* $1 id → (deleted, exists) */
#define BOOKS_SQL_DELETE "books_delete"

/* Every statement above, for bs_db_pool_new(). */
extern const BsDbStatement books_store_statements[];

G_END_DECLS
