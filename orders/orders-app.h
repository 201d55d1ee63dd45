/* orders-app.h: the Orders daemon: configuration, database, Books client,
 * service, lifecycle. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _OrdersApp OrdersApp;

/* Reads the environment (DATABASE_URL, BOOKS_SERVICE_URL, PORT, ...).
 * BS_ERROR_CONFIG names the variable at fault. */
OrdersApp *orders_app_new (GError **error);
void orders_app_free (OrdersApp *app);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OrdersApp, orders_app_free)

/* Apply pending migrations now, blocking, and return (--migrate: run by the
 * package's database setup as the schema owner). *@n_applied: how many. */
gboolean orders_app_migrate (OrdersApp *app, guint *n_applied, GError **error);

/* Listen, then migrate and connect in the background. */
gboolean orders_app_start (OrdersApp *app, GError **error);

/* Run until SIGTERM/SIGINT and drained; the exit status. */
int orders_app_run (OrdersApp *app);

G_END_DECLS
