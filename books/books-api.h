/* books-api.h: the HTTP handlers of the Books service. */
#pragma once

#include "bs-db.h"
#include "bs-migrator.h"
#include "bs-router.h"

G_BEGIN_DECLS

typedef struct
{
  BsDbPool *pool;       /* the primary: writes, and reads without a replica */
  BsDbPool *read_pool;  /* BOOKS_DB_READ_DSN (a standby), or NULL: reads while it is up */
  BsMigrator *migrator; /* health is unhealthy until the schema is in place */
} BooksApi;

/* Add the /v1/books routes and /health to @router. @api must outlive it. */
void books_api_register (BooksApi *api, BsRouter *router);

G_END_DECLS
