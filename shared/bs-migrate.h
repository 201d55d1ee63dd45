/* bs-migrate.h: apply the SQL migrations embedded as GResources. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Apply, in name order, every "NNNN_what.sql" under @resource_dir that
 * schema_migrations does not list yet, each in its own transaction, all under
 * pg_advisory_lock(@lock_key) so that instances starting together take turns.
 * Blocking: runs in a worker thread via bs_migrate_async(). *@n_applied says
 * how many were new. */
gboolean bs_migrate_run (const char *dsn, const char *application_name, const char *resource_dir,
                         gint64 lock_key, guint *n_applied, GError **error);

void bs_migrate_async (const char *dsn, const char *application_name, const char *resource_dir,
                       gint64 lock_key, GCancellable *cancellable, GAsyncReadyCallback callback,
                       gpointer user_data);
/* Returns the number of migrations applied, or -1 with @error set. */
gint bs_migrate_finish (GAsyncResult *result, GError **error);

/* Wait up to @timeout_ms for migration threads still running (blocked in
 * libpq) to end; TRUE when none is left. Call before exiting: libraries'
 * exit-time destructors must not run under a thread still using them. */
gboolean bs_migrate_wait_idle (guint timeout_ms);

/* The migration names under @resource_dir, sorted. */
GStrv bs_migrate_list (const char *resource_dir, GError **error);

G_END_DECLS
