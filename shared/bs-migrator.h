/* bs-migrator.h: keep a service's schema applied: migrate at start, retry with
 * backoff while the database is away, migrate again if the schema vanishes. */
#pragma once

#include "bs-db.h"

G_BEGIN_DECLS

typedef struct _BsMigrator BsMigrator;

/* Migrations under @resource_dir (see bs-migrate.h) for @pool's database.
 * Once they are applied the pool is started; if the pool later finds the
 * schema missing, the migrator becomes not-ready and applies them again.
 * @pool must outlive the migrator. */
BsMigrator *bs_migrator_new (BsDbPool *pool, const char *dsn, const char *application_name,
                             const char *resource_dir, gint64 lock_key);
void bs_migrator_free (BsMigrator *migrator);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsMigrator, bs_migrator_free)

/* Another event loop's pool of the same database, called on that loop's
 * thread before bs_migrator_start(): it is started (and warmed up) with the
 * first one, through its loop's main context. Its loop must not stop before
 * the migrator is freed or runs no more (the main loop stopped). */
void bs_migrator_add_pool (BsMigrator *migrator, BsDbPool *pool);

/* Begin (no-op while a run or a retry is pending). */
void bs_migrator_start (BsMigrator *migrator);

/* TRUE once the schema is applied (and until it is found missing); from any
 * thread. */
gboolean bs_migrator_is_ready (BsMigrator *migrator);

G_END_DECLS
