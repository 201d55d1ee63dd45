-- pgbench script: the statement GET /v1/books/{id} runs, with a random id.
-- Keep in step with books/books-book.h (BOOKS_BOOK_COLUMNS) and
-- books/books-store.c (BOOKS_SQL_GET). Run with -M prepared, as the daemon
-- prepares its statements once per connection.
-- pgbench takes every ":word" for a variable, even inside quotes, so the
-- colons of the time format are written \x3a in an E'' literal: the same
-- constant after parsing, so the same plan and the same work.
\set id random(1, 10000)
SELECT id, title, author, description, price::text, active, to_char(created_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"'), to_char(updated_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"') FROM books WHERE id = :id;
