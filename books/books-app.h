/* books-app.h: the Books daemon: configuration, database, service, lifecycle. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BooksApp BooksApp;

/* Reads the environment (BOOKS_DB_DSN, PORT, ...). BS_ERROR_CONFIG names
 * the variable at fault. */
BooksApp *books_app_new (GError **error);
void books_app_free (BooksApp *app);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BooksApp, books_app_free)

/* Apply pending migrations now, blocking, and return (--migrate: run by the
 * package's database setup as the schema owner). *@n_applied: how many. */
gboolean books_app_migrate (BooksApp *app, guint *n_applied, GError **error);

/* Listen, then migrate and connect in the background. */
gboolean books_app_start (BooksApp *app, GError **error);

/* Run until SIGTERM/SIGINT and drained; the exit status. */
int books_app_run (BooksApp *app);

G_END_DECLS
