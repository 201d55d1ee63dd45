/* bs-migrate.c: schema migrations on their own blocking connection, in a thread. */
#include "bs-migrate.h"

#include "bs-db.h"
#include "bs-error.h"

#include <stdlib.h>
#include <string.h>

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

GStrv
bs_migrate_list (const char *resource_dir, GError **error)
{
  g_auto (GStrv) children = g_resources_enumerate_children (resource_dir, 0, error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  if (children == NULL)
    return NULL;
  for (char **c = children; *c != NULL; c++)
    if (g_str_has_suffix (*c, ".sql"))
      g_ptr_array_add (names, g_strdup (*c));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return (GStrv) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

static gboolean
exec_ok (PGconn *pg, const char *what, PGresult *result, GError **error)
{
  ExecStatusType status = PQresultStatus (result);

  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return TRUE;
  g_set_error (error, BS_ERROR,
               PQstatus (pg) == CONNECTION_OK ? BS_ERROR_INTERNAL : BS_ERROR_UNAVAILABLE, "%s: %s",
               what, g_strstrip (PQresultErrorMessage (result)));
  return FALSE;
}

static gboolean
exec_simple (PGconn *pg, const char *sql, GError **error)
{
  g_autoptr (PGresult) result = PQexec (pg, sql);

  return exec_ok (pg, sql, result, error);
}

static void
rollback (PGconn *pg)
{
  g_autoptr (PGresult) result = PQexec (pg, "ROLLBACK");

  (void) result; /* best effort: the connection may be gone */
}

static gboolean
apply_one (PGconn *pg, const char *resource_dir, const char *name, GError **error)
{
  g_autofree char *path = g_build_path ("/", resource_dir, name, NULL);
  g_autoptr (GBytes) sql = g_resources_lookup_data (path, 0, error);
  g_autofree char *version = g_strndup (name, strlen (name) - strlen (".sql"));
  const char *params[] = { version };
  g_autoptr (PGresult) result = NULL;

  if (sql == NULL)
    return FALSE;
  if (!exec_simple (pg, "BEGIN", error))
    return FALSE;
  /* The file may hold several statements: the simple protocol takes them. */
  result = PQexec (pg, g_bytes_get_data (sql, NULL));
  if (!exec_ok (pg, name, result, error))
    {
      rollback (pg);
      return FALSE;
    }
  g_clear_pointer (&result, PQclear);
  result = PQexecParams (pg, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, NULL, params,
                         NULL, NULL, 0);
  if (!exec_ok (pg, "recording the migration", result, error))
    {
      rollback (pg);
      return FALSE;
    }
  return exec_simple (pg, "COMMIT", error);
}

/* The versions in schema_migrations, into @done (borrowing from *@result);
 * none when the table does not exist yet. */
static gboolean
read_applied (PGconn *pg, GHashTable *done, PGresult **result, GError **error)
{
  g_autoptr (PGresult) exists = PQexec (pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");

  if (!exec_ok (pg, "looking for schema_migrations", exists, error))
    return FALSE;
  if (!g_str_equal (PQgetvalue (exists, 0, 0), "t"))
    return TRUE;
  *result = PQexec (pg, "SELECT version FROM schema_migrations");
  if (!exec_ok (pg, "reading schema_migrations", *result, error))
    return FALSE;
  for (int i = 0; i < PQntuples (*result); i++)
    g_hash_table_add (done, PQgetvalue (*result, i, 0));
  return TRUE;
}

static gboolean
all_applied (char **names, GHashTable *done)
{
  for (char **name = names; *name != NULL; name++)
    {
      g_autofree char *version = g_strndup (*name, strlen (*name) - strlen (".sql"));
      if (!g_hash_table_contains (done, version))
        return FALSE;
    }
  return TRUE;
}

gboolean
bs_migrate_run (const char *dsn, const char *application_name, const char *resource_dir,
                gint64 lock_key, guint *n_applied, GError **error)
{
  BsDbConnectParams params;
  g_autoptr (PGconn) pg = NULL;
  g_autoptr (PGresult) applied = NULL;
  g_autoptr (GHashTable) done = g_hash_table_new (g_str_hash, g_str_equal);
  g_auto (GStrv) names = NULL;
  g_autofree char *lock_sql = NULL;
  guint count = 0;

  names = bs_migrate_list (resource_dir, error);
  if (names == NULL)
    return FALSE;

  bs_db_connect_params_init (&params, dsn, application_name, NULL, NULL,
                             NULL); /* a thread: may block */
  pg = PQconnectdbParams (params.keywords, params.values, 1);
  PQsetNoticeProcessor (pg, bs_db_log_notice, NULL);
  if (PQstatus (pg) != CONNECTION_OK)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "connecting: %s",
                   g_strstrip (PQerrorMessage (pg)));
      return FALSE;
    }
  /* Up to date: nothing to lock or create, so a role that may only read
   * and write the data (the runtime role of a packaged install) passes. */
  if (!read_applied (pg, done, &applied, error))
    return FALSE;
  if (all_applied (names, done))
    {
      if (n_applied != NULL)
        *n_applied = 0;
      return TRUE;
    }

  /* a session lock: released when this connection closes, whatever happens */
  lock_sql = g_strdup_printf ("SELECT pg_advisory_lock(%" G_GINT64_FORMAT ")", lock_key);
  if (!exec_simple (pg, lock_sql, error)
      || !exec_simple (pg, "SET client_min_messages = warning", error)
      || !exec_simple (pg,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version text PRIMARY KEY,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       error))
    return FALSE;
  /* again, under the lock: another instance may have applied some meanwhile */
  g_hash_table_remove_all (done);
  g_clear_pointer (&applied, PQclear);
  if (!read_applied (pg, done, &applied, error))
    return FALSE;

  for (char **name = names; *name != NULL; name++)
    {
      g_autofree char *version = g_strndup (*name, strlen (*name) - strlen (".sql"));
      if (g_hash_table_contains (done, version))
        continue;
      if (!apply_one (pg, resource_dir, *name, error))
        {
          g_prefix_error (error, "migration %s: ", *name);
          return FALSE;
        }
      count++;
    }
  if (n_applied != NULL)
    *n_applied = count;
  return TRUE;
}

/* Migration threads not finished yet, for bs_migrate_wait_idle(). */
static GMutex running_lock;
static GCond running_cond;
static guint running_threads;

typedef struct
{
  char *dsn;
  char *application_name;
  char *resource_dir;
  gint64 lock_key;
} MigrateData;

static void
migrate_data_free (gpointer data)
{
  MigrateData *md = data;

  g_free (md->dsn);
  g_free (md->application_name);
  g_free (md->resource_dir);
  g_free (md);
}

static void
migrate_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  MigrateData *md = task_data;
  guint n = 0;
  GError *error = NULL;

  if (bs_migrate_run (md->dsn, md->application_name, md->resource_dir, md->lock_key, &n, &error))
    g_task_return_int (task, n);
  else
    g_task_return_error (task, error);

  g_mutex_lock (&running_lock);
  running_threads--;
  g_cond_broadcast (&running_cond);
  g_mutex_unlock (&running_lock);
}

gboolean
bs_migrate_wait_idle (guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gboolean idle;

  g_mutex_lock (&running_lock);
  while (running_threads > 0 && g_cond_wait_until (&running_cond, &running_lock, end))
    ;
  idle = running_threads == 0;
  g_mutex_unlock (&running_lock);
  return idle;
}

void
bs_migrate_async (const char *dsn, const char *application_name, const char *resource_dir,
                  gint64 lock_key, GCancellable *cancellable, GAsyncReadyCallback callback,
                  gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  MigrateData *md = g_new0 (MigrateData, 1);

  md->dsn = g_strdup (dsn);
  md->application_name = g_strdup (application_name);
  md->resource_dir = g_strdup (resource_dir);
  md->lock_key = lock_key;
  g_task_set_task_data (task, md, migrate_data_free);
  g_mutex_lock (&running_lock);
  running_threads++;
  g_mutex_unlock (&running_lock);
  g_task_run_in_thread (task, migrate_thread);
}

gint
bs_migrate_finish (GAsyncResult *result, GError **error)
{
  return (gint) g_task_propagate_int (G_TASK (result), error);
}
