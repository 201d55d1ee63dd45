/* test-db.c: the libpq connection parameters the pool builds. */
#include "bs-db.h"
#include "bs-error.h"

#include <string.h>

static void
test_host_to_resolve (void)
{
  static const struct
  {
    const char *dsn;
    const char *host; /* NULL: libpq needs no lookup */
  } cases[] = {
    { "postgresql://u:p@db.example:5432/books_db", "db.example" },
    { "host=localhost dbname=x", "localhost" },
    { "postgresql://u@127.0.0.1:5432/x", NULL },
    { "postgresql://u@[::1]:5432/x", NULL },
    { "host=db.example hostaddr=10.0.0.5 dbname=x", NULL },
    { "host=/var/run/postgresql dbname=x", NULL },
    { "host=a.example,b.example dbname=x", NULL },
    { "dbname=x", NULL },
    { "postgresql://[", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *host = bs_db_dsn_host_to_resolve (cases[i].dsn);
      g_assert_cmpstr (host, ==, cases[i].host);
    }
}

static const char *
lookup (const BsDbConnectParams *params, const char *keyword)
{
  const char *found = NULL;

  for (guint i = 0; params->keywords[i] != NULL; i++)
    if (g_str_equal (params->keywords[i], keyword))
      found = params->values[i]; /* the last one wins, as in libpq */
  return found;
}

static void
test_connect_params (void)
{
  BsDbConnectParams params;
  guint dbname_at = 0, host_at = 0;

  bs_db_connect_params_init (&params, "host=db.example dbname=x", "app", NULL, NULL);
  g_assert_cmpstr (lookup (&params, "keepalives"), ==, "1");
  g_assert_cmpstr (lookup (&params, "tcp_user_timeout"), ==, "9000");
  g_assert_cmpstr (lookup (&params, "application_name"), ==, "app");
  /* no Kerberos set-up in libpq: its exit-time destructors once aborted a
   * daemon stopped while a migration thread was connecting */
  g_assert_cmpstr (lookup (&params, "gssencmode"), ==, "disable");
  g_assert_cmpstr (lookup (&params, "dbname"), ==, "host=db.example dbname=x");
  g_assert_null (lookup (&params, "hostaddr"));

  /* the resolved addresses come after the DSN, so they are what libpq uses */
  bs_db_connect_params_init (&params, "host=db.example dbname=x", "app", "db.example,db.example",
                             "10.0.0.5,10.0.0.6");
  g_assert_cmpstr (lookup (&params, "hostaddr"), ==, "10.0.0.5,10.0.0.6");
  g_assert_cmpstr (lookup (&params, "host"), ==, "db.example,db.example");
  for (guint i = 0; params.keywords[i] != NULL; i++)
    {
      if (g_str_equal (params.keywords[i], "dbname"))
        dbname_at = i;
      if (g_str_equal (params.keywords[i], "host"))
        host_at = i;
    }
  g_assert_cmpuint (host_at, >, dbname_at);
}

static void
test_pool_share (void)
{
  /* 5 connections over 3 loops: 2 + 2 + 1; never none */
  g_assert_cmpuint (bs_db_pool_share (5, 0, 3), ==, 2);
  g_assert_cmpuint (bs_db_pool_share (5, 1, 3), ==, 2);
  g_assert_cmpuint (bs_db_pool_share (5, 2, 3), ==, 1);
  g_assert_cmpuint (bs_db_pool_share (4, 0, 1), ==, 4);
  g_assert_cmpuint (bs_db_pool_share (1, 1, 2), ==, 1);
}

static void
test_options_from_env (void)
{
  g_autoptr (GError) error = NULL;
  BsDbOptions options;
  guint pool_size = 0;

  bs_db_options_init_default (&options);
  g_unsetenv ("TESTDB_DB_POOL_SIZE");
  g_setenv ("TESTDB_DB_TIMEOUT_MS", "250", TRUE);
  g_setenv ("TESTDB_DB_PIPELINE_DEPTH", "1", TRUE);
  g_unsetenv ("TESTDB_DB_MAX_WAITING");
  g_assert_true (bs_db_options_from_env ("TESTDB", &options, &pool_size, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (pool_size, ==, 4); /* the default */
  g_assert_cmpuint (options.query_timeout_ms, ==, 250);
  g_assert_cmpuint (options.pipeline_depth, ==, 1);
  g_assert_cmpuint (options.max_waiting, ==, 1024);

  g_setenv ("TESTDB_DB_PIPELINE_DEPTH", "0", TRUE);
  g_assert_false (bs_db_options_from_env ("TESTDB", &options, &pool_size, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "TESTDB_DB_PIPELINE_DEPTH"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bs/db/host-to-resolve", test_host_to_resolve);
  g_test_add_func ("/bs/db/connect-params", test_connect_params);
  g_test_add_func ("/bs/db/pool-share", test_pool_share);
  g_test_add_func ("/bs/db/options-from-env", test_options_from_env);
  return g_test_run ();
}
