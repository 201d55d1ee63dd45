/* test-db.c: the libpq connection parameters the pool builds. */
#include "bs-db-hosts.h"
#include "bs-db.h"
#include "bs-test.h"
#include "bs-error.h"

#include <string.h>

/* Which DSNs need our lookup, and of which names. */
static void
test_hosts_to_resolve (void)
{
  static const struct
  {
    const char *dsn;
    const char *names; /* the entries' names to look up, "-" for none; NULL: no lookup at all */
  } cases[] = {
    { "postgresql://u:p@db.example:5432/books_db", "db.example" },
    { "host=localhost dbname=x", "localhost" },
    { "postgresql://u@127.0.0.1:5432/x", NULL },
    { "postgresql://u@[::1]:5432/x", NULL },
    { "host=db.example hostaddr=10.0.0.5 dbname=x", NULL },
    { "host=/var/run/postgresql dbname=x", NULL },
    { "host=a.example,b.example dbname=x", "a.example b.example" },
    { "host=10.0.0.1,b.example,/run/postgresql dbname=x", "- b.example -" },
    { "postgresql://u@a.example:5432,[::1]:5433/x?target_session_attrs=read-write", "a.example -" },
    { "host=10.0.0.1,10.0.0.2 dbname=x", NULL },
    { "host=a.example,b.example port=1,2,3 dbname=x", NULL }, /* libpq refuses it */
    { "dbname=x", NULL },
    { "postgresql://[", NULL },
  };

  g_unsetenv ("PGHOST");
  g_unsetenv ("PGHOSTADDR");
  g_unsetenv ("PGPORT");
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (BsDbHosts) hosts = bs_db_hosts_new (cases[i].dsn);
      g_autoptr (GString) names = g_string_new (NULL);

      if (hosts == NULL)
        {
          if (cases[i].names != NULL)
            bs_test_fail ("%s: no lookup, expected %s", cases[i].dsn, cases[i].names);
          continue;
        }
      for (guint k = 0; k < bs_db_hosts_get_n (hosts); k++)
        {
          const char *name = bs_db_hosts_get_name (hosts, k);
          g_string_append_printf (names, "%s%s", k > 0 ? " " : "", name != NULL ? name : "-");
        }
      if (g_strcmp0 (names->str, cases[i].names) != 0)
        bs_test_fail ("%s: names \"%s\", expected \"%s\"", cases[i].dsn, names->str,
                      cases[i].names != NULL ? cases[i].names : "(no lookup)");
    }
}

/* Without host= in the DSN, libpq takes PGHOST (and PGPORT): so do we. */
static void
test_hosts_from_environment (void)
{
  g_autoptr (BsDbHosts) hosts = NULL;
  g_autoptr (BsDbHosts) given = NULL;
  g_autofree char *host = NULL, *hostaddr = NULL, *port = NULL;

  g_setenv ("PGHOST", "a.example,b.example", TRUE);
  g_setenv ("PGPORT", "5432,5433", TRUE);
  hosts = bs_db_hosts_new ("dbname=x");
  g_assert_nonnull (hosts);
  g_assert_cmpuint (bs_db_hosts_get_n (hosts), ==, 2);
  bs_db_hosts_set_addresses (hosts, 0, (const char *const[]){ "192.0.2.1", NULL });
  bs_db_hosts_set_addresses (hosts, 1, (const char *const[]){ "192.0.2.2", NULL });
  g_assert_true (bs_db_hosts_build (hosts, 0, &host, &hostaddr, &port));
  g_assert_cmpstr (host, ==, "a.example,b.example");
  g_assert_cmpstr (hostaddr, ==, "192.0.2.1,192.0.2.2");
  g_assert_cmpstr (port, ==, "5432,5433");
  /* the DSN's own host wins over PGHOST */
  given = bs_db_hosts_new ("host=10.0.0.1 dbname=x");
  g_assert_null (given);
  g_setenv ("PGHOSTADDR", "10.0.0.9", TRUE);
  g_clear_pointer (&hosts, bs_db_hosts_free);
  g_assert_null ((hosts = bs_db_hosts_new ("dbname=x")));
  g_unsetenv ("PGHOST");
  g_unsetenv ("PGHOSTADDR");
  g_unsetenv ("PGPORT");
}

/* host=a,b,c with the names' addresses becomes aligned host=, hostaddr= and
 * port= lists: one entry per address, the name kept for verify-full. */
static void
test_hosts_build (void)
{
  g_autoptr (BsDbHosts) hosts
      = bs_db_hosts_new ("host=db1.example,10.0.0.2,/run/postgresql,db4.example "
                         "port=5432,5433,5434,5435 dbname=x target_session_attrs=read-write");
  g_autoptr (BsDbHosts) one_port = NULL;
  g_autofree char *host = NULL, *hostaddr = NULL, *port = NULL;

  g_assert_nonnull (hosts);
  g_assert_cmpuint (bs_db_hosts_get_n (hosts), ==, 4);
  g_assert_cmpstr (bs_db_hosts_get_name (hosts, 0), ==, "db1.example");
  g_assert_null (bs_db_hosts_get_name (hosts, 1));
  g_assert_null (bs_db_hosts_get_name (hosts, 2));
  bs_db_hosts_set_addresses (hosts, 0, (const char *const[]){ "192.0.2.1", "2001:db8::1", NULL });
  bs_db_hosts_set_addresses (hosts, 3, (const char *const[]){ "192.0.2.4", NULL });
  g_assert_true (bs_db_hosts_build (hosts, 0, &host, &hostaddr, &port));
  g_assert_cmpstr (host, ==, "db1.example,db1.example,10.0.0.2,/run/postgresql,db4.example");
  g_assert_cmpstr (hostaddr, ==, "192.0.2.1,2001:db8::1,10.0.0.2,,192.0.2.4");
  g_assert_cmpstr (port, ==, "5432,5432,5433,5434,5435");
  g_clear_pointer (&host, g_free);
  g_clear_pointer (&hostaddr, g_free);
  g_clear_pointer (&port, g_free);

  /* after a timeout the next attempt begins further along, wrapping round */
  g_assert_true (bs_db_hosts_build (hosts, 8, &host, &hostaddr, &port));
  g_assert_cmpstr (host, ==, "/run/postgresql,db4.example,db1.example,db1.example,10.0.0.2");
  g_assert_cmpstr (hostaddr, ==, ",192.0.2.4,192.0.2.1,2001:db8::1,10.0.0.2");
  g_assert_cmpstr (port, ==, "5434,5435,5432,5432,5433");
  g_clear_pointer (&host, g_free);
  g_clear_pointer (&hostaddr, g_free);
  g_clear_pointer (&port, g_free);

  /* a name that did not resolve is left out; the others remain */
  bs_db_hosts_set_addresses (hosts, 0, NULL);
  g_assert_true (bs_db_hosts_build (hosts, 0, &host, &hostaddr, &port));
  g_assert_cmpstr (host, ==, "10.0.0.2,/run/postgresql,db4.example");
  g_assert_cmpstr (hostaddr, ==, "10.0.0.2,,192.0.2.4");
  g_assert_cmpstr (port, ==, "5433,5434,5435");
  g_clear_pointer (&host, g_free);
  g_clear_pointer (&hostaddr, g_free);
  g_clear_pointer (&port, g_free);

  /* one port for all: left to the DSN; no name resolved: nothing to connect to */
  one_port = bs_db_hosts_new ("host=a.example,b.example port=6432 dbname=x");
  g_assert_nonnull (one_port);
  g_assert_false (bs_db_hosts_build (one_port, 0, &host, &hostaddr, &port));
  bs_db_hosts_set_addresses (one_port, 1, (const char *const[]){ "192.0.2.2", NULL });
  g_assert_true (bs_db_hosts_build (one_port, 0, &host, &hostaddr, &port));
  g_assert_cmpstr (host, ==, "b.example");
  g_assert_cmpstr (hostaddr, ==, "192.0.2.2");
  g_assert_null (port);
  g_clear_pointer (&host, g_free);
  g_clear_pointer (&hostaddr, g_free);
}

/* A URI's ports are per host (a.example's empty: the default). */
static void
test_hosts_uri_ports (void)
{
  g_autoptr (BsDbHosts) hosts = bs_db_hosts_new ("postgresql://u@a.example,b.example:6432/x");
  g_autofree char *host = NULL, *hostaddr = NULL, *port = NULL;

  g_assert_nonnull (hosts);
  bs_db_hosts_set_addresses (hosts, 0, (const char *const[]){ "192.0.2.1", "192.0.2.3", NULL });
  bs_db_hosts_set_addresses (hosts, 1, (const char *const[]){ "192.0.2.2", NULL });
  g_assert_true (bs_db_hosts_build (hosts, 0, &host, &hostaddr, &port));
  g_assert_cmpstr (host, ==, "a.example,a.example,b.example");
  g_assert_cmpstr (hostaddr, ==, "192.0.2.1,192.0.2.3,192.0.2.2");
  g_assert_cmpstr (port, ==, ",,6432");
}

static void
resolved_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* The lookups run in GIO's resolver; "localhost" and an unresolvable name
 * (the .invalid domain, RFC 6761): the first is kept, the second left out. */
static void
test_hosts_resolve (void)
{
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;
  const BsDbHosts *hosts;
  g_autofree char *host = NULL, *hostaddr = NULL, *port = NULL;

  bs_db_hosts_resolve_async (bs_db_hosts_new ("host=nothing.invalid,localhost port=1,2 dbname=x"),
                             NULL, resolved_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  hosts = bs_db_hosts_resolve_finish (result, &error);
  g_assert_no_error (error);
  g_assert_true (bs_db_hosts_build (hosts, 0, &host, &hostaddr, &port));
  g_assert_true (g_str_has_prefix (host, "localhost"));
  g_assert_true (strstr (hostaddr, "127.0.0.1") != NULL || strstr (hostaddr, "::1") != NULL);
  g_assert_true (g_str_has_prefix (port, "2"));
  g_clear_object (&result);

  /* none resolves: the lookup's error */
  bs_db_hosts_resolve_async (bs_db_hosts_new ("host=nothing.invalid dbname=x"), NULL, resolved_cb,
                             &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (bs_db_hosts_resolve_finish (result, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "nothing.invalid"));
  g_clear_error (&error);
  g_clear_object (&result);

  /* cancelled: the lookups' end is reported as cancelled */
  {
    g_autoptr (GCancellable) cancellable = g_cancellable_new ();

    bs_db_hosts_resolve_async (bs_db_hosts_new ("host=localhost dbname=x"), cancellable,
                               resolved_cb, &result);
    g_cancellable_cancel (cancellable);
    while (result == NULL)
      g_main_context_iteration (NULL, TRUE);
    g_assert_null (bs_db_hosts_resolve_finish (result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
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

  bs_db_connect_params_init (&params, "host=db.example dbname=x", "app", NULL, NULL, NULL);
  g_assert_cmpstr (lookup (&params, "keepalives"), ==, "1");
  g_assert_cmpstr (lookup (&params, "tcp_user_timeout"), ==, "9000");
  g_assert_cmpstr (lookup (&params, "application_name"), ==, "app");
  /* no Kerberos set-up in libpq: its exit-time destructors once aborted a
   * daemon stopped while a migration thread was connecting */
  g_assert_cmpstr (lookup (&params, "gssencmode"), ==, "disable");
  g_assert_cmpstr (lookup (&params, "dbname"), ==, "host=db.example dbname=x");
  g_assert_null (lookup (&params, "hostaddr"));
  g_assert_null (lookup (&params, "port"));

  /* the resolved addresses come after the DSN, so they are what libpq uses */
  bs_db_connect_params_init (&params, "host=db.example dbname=x", "app", "db.example,db.example",
                             "10.0.0.5,10.0.0.6", NULL);
  g_assert_cmpstr (lookup (&params, "hostaddr"), ==, "10.0.0.5,10.0.0.6");
  g_assert_null (lookup (&params, "port")); /* the DSN's */
  g_assert_cmpstr (lookup (&params, "host"), ==, "db.example,db.example");
  for (guint i = 0; params.keywords[i] != NULL; i++)
    {
      if (g_str_equal (params.keywords[i], "dbname"))
        dbname_at = i;
      if (g_str_equal (params.keywords[i], "host"))
        host_at = i;
    }
  g_assert_cmpuint (host_at, >, dbname_at);

  /* a port list to match the addresses */
  bs_db_connect_params_init (&params, "host=a,b port=1,2 dbname=x", "app", "a,a,b", "10.0.0.1,::1,",
                             "1,1,2");
  g_assert_cmpstr (lookup (&params, "port"), ==, "1,1,2");
  g_assert_cmpstr (lookup (&params, "hostaddr"), ==, "10.0.0.1,::1,");
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
  g_test_add_func ("/bs/db/hosts/to-resolve", test_hosts_to_resolve);
  g_test_add_func ("/bs/db/hosts/environment", test_hosts_from_environment);
  g_test_add_func ("/bs/db/hosts/build", test_hosts_build);
  g_test_add_func ("/bs/db/hosts/uri-ports", test_hosts_uri_ports);
  g_test_add_func ("/bs/db/hosts/resolve", test_hosts_resolve);
  g_test_add_func ("/bs/db/connect-params", test_connect_params);
  g_test_add_func ("/bs/db/pool-share", test_pool_share);
  g_test_add_func ("/bs/db/options-from-env", test_options_from_env);
  return g_test_run ();
}
