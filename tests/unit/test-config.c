/* test-config.c: configuration from environment variables. */
#include "bs-config.h"
#include "bs-error.h"
#include "bs-test.h"

#include <glib.h>
#include <string.h>

#define VAR "BS_TEST_CONFIG_VALUE"

/* Each test starts and ends with VAR unset. */
typedef struct
{
  const char *name;
} Fixture;

static void
fixture_setup (Fixture *fixture, gconstpointer user_data)
{
  fixture->name = VAR;
  g_unsetenv (VAR);
}

static void
fixture_teardown (Fixture *fixture, gconstpointer user_data)
{
  g_unsetenv (VAR);
}

/* The error is BS_ERROR_CONFIG and its message names the variable. */
static void
check_config_error (const GError *error, const char *what)
{
  if (error == NULL)
    {
      bs_test_fail ("%s: no error set", what);
      return;
    }
  if (!g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG))
    bs_test_fail ("%s: expected BS_ERROR_CONFIG, got %s:%d %s", what,
                  g_quark_to_string (error->domain), error->code, error->message);
  if (strstr (error->message, VAR) == NULL)
    bs_test_fail ("%s: message \"%s\" does not name %s", what, error->message, VAR);
}

/* ---- strings ---- */

static void
check_string (const char *value, const char *fallback, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *what = g_strdup_printf ("get_string (%s=\"%s\", fallback \"%s\")", VAR,
                                           value != NULL ? value : "(unset)",
                                           fallback != NULL ? fallback : "(required)");

  if (value != NULL)
    g_setenv (VAR, value, TRUE);
  else
    g_unsetenv (VAR);

  if (expected == NULL)
    {
      if (bs_config_get_string (VAR, fallback, &out, &error))
        bs_test_fail ("%s: accepted as \"%s\"", what, out);
      else
        check_config_error (error, what);
      return;
    }
  if (!bs_config_get_string (VAR, fallback, &out, &error))
    bs_test_fail ("%s failed: %s", what, error->message);
  else if (g_strcmp0 (out, expected) != 0)
    bs_test_fail ("%s = \"%s\", expected \"%s\"", what, out, expected);
}

static void
test_string (Fixture *fixture, gconstpointer user_data)
{
  check_string ("value", NULL, "value");
  check_string ("value", "fallback", "value");
  check_string ("  padded  ", NULL, "padded");
  check_string ("\tpadded\n", NULL, "padded");
  check_string ("in ner", NULL, "in ner");
  check_string ("caf\xc3\xa9", NULL, "caf\xc3\xa9");
  check_string (NULL, "fallback", "fallback");
  check_string ("", "fallback", "fallback");
  check_string ("   ", "fallback", "fallback");
  check_string (NULL, "", "");
}

static void
test_string_required (Fixture *fixture, gconstpointer user_data)
{
  check_string (NULL, NULL, NULL);
  check_string ("", NULL, NULL);
  check_string ("   ", NULL, NULL);
  check_string ("\t\n", NULL, NULL);
}

/* ---- unsigned integers ---- */

/* @expected_ok FALSE: must fail with an error naming VAR. */
static void
check_uint (const char *value, guint fallback, guint min, guint max, gboolean expected_ok,
            guint expected)
{
  g_autoptr (GError) error = NULL;
  guint out = 12345;
  gboolean ok;
  g_autofree char *what = g_strdup_printf ("get_uint (%s=\"%s\", fallback %u, [%u, %u])", VAR,
                                           value != NULL ? value : "(unset)", fallback, min, max);

  if (value != NULL)
    g_setenv (VAR, value, TRUE);
  else
    g_unsetenv (VAR);
  ok = bs_config_get_uint (VAR, fallback, min, max, &out, &error);
  if (expected_ok && !ok)
    bs_test_fail ("%s failed: %s", what, error->message);
  else if (expected_ok && out != expected)
    bs_test_fail ("%s = %u, expected %u", what, out, expected);
  else if (!expected_ok && ok)
    bs_test_fail ("%s accepted as %u", what, out);
  else if (!expected_ok)
    check_config_error (error, what);
}

static void
test_uint (Fixture *fixture, gconstpointer user_data)
{
  check_uint ("5", 1, 0, 10, TRUE, 5);
  check_uint ("0", 1, 0, 10, TRUE, 0);
  check_uint ("10", 1, 0, 10, TRUE, 10); /* bounds are inclusive */
  check_uint ("1", 7, 1, 10, TRUE, 1);
  check_uint ("4294967295", 0, 0, G_MAXUINT, TRUE, G_MAXUINT);
  check_uint (NULL, 7, 1, 10, TRUE, 7);
  check_uint ("", 7, 1, 10, TRUE, 7);
  check_uint ("0005", 1, 0, 10, TRUE, 5);
}

static void
test_uint_invalid (Fixture *fixture, gconstpointer user_data)
{
  check_uint ("abc", 1, 0, 10, FALSE, 0);
  check_uint ("-1", 1, 0, 10, FALSE, 0);
  check_uint ("-0", 1, 0, 10, FALSE, 0);
  check_uint ("+5", 1, 0, 10, FALSE, 0);
  check_uint ("11", 1, 0, 10, FALSE, 0);
  check_uint ("70000", 1, 0, 65535, FALSE, 0);
  check_uint ("0", 1, 1, 10, FALSE, 0);
  check_uint ("4294967296", 0, 0, G_MAXUINT, FALSE, 0);
  check_uint ("99999999999999999999999", 0, 0, G_MAXUINT, FALSE, 0);
  check_uint ("5abc", 1, 0, 10, FALSE, 0);
  check_uint ("5.0", 1, 0, 10, FALSE, 0);
  check_uint ("1e1", 1, 0, 100, FALSE, 0);
  check_uint ("0x10", 1, 0, 100, FALSE, 0);
  check_uint ("5 ", 1, 0, 10, FALSE, 0);
  /* Not trimmed, unlike strings: a leading space is an error, not 5. */
  check_uint (" 5", 1, 0, 10, FALSE, 0);
  check_uint ("   ", 1, 0, 10, FALSE, 0);
}

/* ---- ports ---- */

static void
check_port (const char *value, guint16 fallback, gboolean expected_ok, guint16 expected)
{
  g_autoptr (GError) error = NULL;
  guint16 out = 4242;
  gboolean ok;
  g_autofree char *what = g_strdup_printf ("get_port (%s=\"%s\", fallback %u)", VAR,
                                           value != NULL ? value : "(unset)", fallback);

  if (value != NULL)
    g_setenv (VAR, value, TRUE);
  else
    g_unsetenv (VAR);
  ok = bs_config_get_port (VAR, fallback, &out, &error);
  if (expected_ok && !ok)
    bs_test_fail ("%s failed: %s", what, error->message);
  else if (expected_ok && out != expected)
    bs_test_fail ("%s = %u, expected %u", what, out, expected);
  else if (!expected_ok && ok)
    bs_test_fail ("%s accepted as %u", what, out);
  else if (!expected_ok)
    check_config_error (error, what);
}

static void
test_port (Fixture *fixture, gconstpointer user_data)
{
  check_port ("8080", 1, TRUE, 8080);
  check_port ("1", 1, TRUE, 1);
  check_port ("65535", 1, TRUE, 65535);
  check_port (NULL, 8081, TRUE, 8081);
  check_port ("", 8082, TRUE, 8082);
  check_port ("0", 8080, FALSE, 0);
  check_port ("65536", 8080, FALSE, 0);
  check_port ("70000", 8080, FALSE, 0);
  check_port ("131072", 8080, FALSE, 0); /* would wrap to 0 as a guint16 */
  check_port ("131073", 8080, FALSE, 0); /* would wrap to 1 */
  check_port ("-1", 8080, FALSE, 0);
  check_port ("http", 8080, FALSE, 0);
  check_port ("80a", 8080, FALSE, 0);
}

/* ---- PostgreSQL DSNs ---- */

static void
check_dsn_ok (const char *value, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;

  g_setenv (VAR, value, TRUE);
  if (!bs_config_get_pg_dsn (VAR, &out, &error))
    bs_test_fail ("get_pg_dsn (\"%s\") failed: %s", value, error->message);
  else if (g_strcmp0 (out, expected) != 0)
    bs_test_fail ("get_pg_dsn (\"%s\") = \"%s\", expected \"%s\"", value, out, expected);
}

static void
check_dsn_rejected (const char *value)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *what
      = g_strdup_printf ("get_pg_dsn (%s=\"%s\")", VAR, value != NULL ? value : "(unset)");

  if (value != NULL)
    g_setenv (VAR, value, TRUE);
  else
    g_unsetenv (VAR);
  if (bs_config_get_pg_dsn (VAR, &out, &error))
    bs_test_fail ("%s accepted", what);
  else
    check_config_error (error, what);
}

static void
test_pg_dsn (Fixture *fixture, gconstpointer user_data)
{
  check_dsn_ok ("postgresql://u:p@127.0.0.1:5432/db", "postgresql://u:p@127.0.0.1:5432/db");
  check_dsn_ok ("postgres://localhost/db", "postgres://localhost/db");
  check_dsn_ok ("postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql");
  check_dsn_ok ("postgresql://[::1]:5432/db", "postgresql://[::1]:5432/db");
  check_dsn_ok ("host=127.0.0.1 dbname=x user=y", "host=127.0.0.1 dbname=x user=y");
  check_dsn_ok ("host='/run/postgresql' dbname='a b'", "host='/run/postgresql' dbname='a b'");
  check_dsn_ok ("  dbname=x  ", "dbname=x");
  /* several hosts: one port for all, or one each */
  check_dsn_ok ("host=db1,db2 port=5432 dbname=x target_session_attrs=read-write",
                "host=db1,db2 port=5432 dbname=x target_session_attrs=read-write");
  check_dsn_ok ("postgresql://db1:5432,db2:5433/x?target_session_attrs=prefer-standby",
                "postgresql://db1:5432,db2:5433/x?target_session_attrs=prefer-standby");
  check_dsn_ok ("host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 port=1,2 dbname=x",
                "host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 port=1,2 dbname=x");
}

static void
test_pg_dsn_invalid (Fixture *fixture, gconstpointer user_data)
{
  check_dsn_rejected (NULL);
  check_dsn_rejected ("");
  check_dsn_rejected ("   ");
  check_dsn_rejected ("postgresql://[");
  check_dsn_rejected ("host='unterminated");
  check_dsn_rejected ("not a dsn");
  check_dsn_rejected ("nosuchkeyword=1");
  check_dsn_rejected ("postgresql://localhost/db?nosuchparam=1");
  /* what libpq would only refuse when connecting, over and over */
  check_dsn_rejected ("host=db1,db2 port=1,2,3 dbname=x");
  check_dsn_rejected ("host=db1,db2 hostaddr=10.0.0.1 dbname=x");
  check_dsn_rejected ("host=db1,db2 dbname=x target_session_attrs=master");
}

/* The error goes to the journal; a password in the DSN must not go with it. */
static void
test_pg_dsn_error_hides_password (Fixture *fixture, gconstpointer user_data)
{
  static const char *const cases[] = {
    "postgresql://user:s3cretpw@[::1/db",
    "postgresql://user:s3cretpw@host/db?nosuchparam=1",
    "postgresql://user:s3cretpw%zz@host/db",
    "host=h password=s3cretpw nosuchkeyword=1",
    "host=h password='s3cretpw",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *out = NULL;

      g_setenv (VAR, cases[i], TRUE);
      g_assert_false (bs_config_get_pg_dsn (VAR, &out, &error));
      if (error == NULL)
        continue;
      check_config_error (error, cases[i]);
      if (strstr (error->message, "s3cretpw") != NULL)
        bs_test_fail ("the error for a bad DSN shows its password: %s", error->message);
    }
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/bs/config/string/values", test_string);
  ADD ("/bs/config/string/required", test_string_required);
  ADD ("/bs/config/uint/valid", test_uint);
  ADD ("/bs/config/uint/invalid", test_uint_invalid);
  ADD ("/bs/config/port", test_port);
  ADD ("/bs/config/pg-dsn/valid", test_pg_dsn);
  ADD ("/bs/config/pg-dsn/invalid", test_pg_dsn_invalid);
  ADD ("/bs/config/pg-dsn/error-hides-password", test_pg_dsn_error_hides_password);
#undef ADD

  return g_test_run ();
}
