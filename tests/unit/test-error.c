/* test-error.c: the error domain, its HTTP mapping, and SQLSTATE mapping. */
#include "bs-error.h"
#include "bs-test.h"

#include <gio/gio.h>
#include <glib.h>

static void
test_table (void)
{
  static const struct
  {
    BsErrorCode code;
    guint status;
    const char *name;
  } cases[] = {
    { BS_ERROR_VALIDATION, 400, "VALIDATION_ERROR" },
    { BS_ERROR_MALFORMED_JSON, 400, "MALFORMED_JSON" },
    { BS_ERROR_NOT_FOUND, 404, "NOT_FOUND" },
    { BS_ERROR_METHOD_NOT_ALLOWED, 405, "METHOD_NOT_ALLOWED" },
    { BS_ERROR_CONFLICT, 409, "CONFLICT" },
    { BS_ERROR_GONE, 410, "GONE" },
    { BS_ERROR_PAYLOAD_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE" },
    { BS_ERROR_UNSUPPORTED_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE" },
    { BS_ERROR_INTERNAL, 500, "INTERNAL_ERROR" },
    { BS_ERROR_UNAVAILABLE, 503, "SERVICE_UNAVAILABLE" },
    { BS_ERROR_TIMEOUT, 503, "TIMEOUT" },
    { BS_ERROR_RETRY, 503, "RETRY" },
    { BS_ERROR_BAD_GATEWAY, 502, "BAD_GATEWAY" },
    { BS_ERROR_BOOK_NOT_ORDERABLE, 409, "BOOK_NOT_ORDERABLE" },
    { BS_ERROR_IDEMPOTENCY_CONFLICT, 409, "IDEMPOTENCY_CONFLICT" },
    { BS_ERROR_UNAUTHORIZED, 401, "UNAUTHORIZED" },
    { BS_ERROR_TOO_MANY_REQUESTS, 429, "TOO_MANY_REQUESTS" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = g_error_new_literal (BS_ERROR, cases[i].code, "x");
      guint status = bs_error_http_status (error);
      const char *name = bs_error_code_name (error);

      if (status != cases[i].status)
        bs_test_fail ("code %d: status %u, expected %u", cases[i].code, status, cases[i].status);
      if (g_strcmp0 (name, cases[i].name) != 0)
        bs_test_fail ("code %d: name %s, expected %s", cases[i].code, name, cases[i].name);
    }
}

/* Every code of the enum has its own name and a status that is a valid HTTP
 * error status; names are distinct. */
static void
test_every_code (void)
{
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  for (int code = BS_ERROR_VALIDATION; code <= BS_ERROR_CONFIG; code++)
    {
      g_autoptr (GError) error = g_error_new_literal (BS_ERROR, code, "x");
      guint status = bs_error_http_status (error);
      const char *name = bs_error_code_name (error);

      g_assert_cmpuint (status, >=, 400);
      g_assert_cmpuint (status, <=, 599);
      g_assert_nonnull (name);
      if (name == NULL)
        continue;
      g_assert_cmpstr (name, !=, "");
      if (code != BS_ERROR_INTERNAL && g_str_equal (name, "INTERNAL_ERROR"))
        bs_test_fail ("code %d falls back to INTERNAL_ERROR", code);
      if (!g_hash_table_add (names, (gpointer) name))
        bs_test_fail ("code %d reuses the name %s", code, name);
    }
}

static void
test_config (void)
{
  g_autoptr (GError) error = g_error_new_literal (BS_ERROR, BS_ERROR_CONFIG, "x");

  /* never sent over HTTP, but if it were it is a server fault */
  g_assert_cmpuint (bs_error_http_status (error), ==, 500);
  g_assert_cmpstr (bs_error_code_name (error), ==, "CONFIGURATION_ERROR");
}

static void
test_foreign (void)
{
  g_autoptr (GError) io = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "x");
  g_autoptr (GError) file = g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_NOENT, "x");
  g_autoptr (GError) beyond = g_error_new_literal (BS_ERROR, BS_ERROR_TOO_MANY_REQUESTS + 1, "x");
  g_autoptr (GError) huge = g_error_new_literal (BS_ERROR, 100000, "x");
  g_autoptr (GError) negative = g_error_new_literal (BS_ERROR, -1, "x");
  const GError *errors[] = { io, file, beyond, huge, negative };

  for (gsize i = 0; i < G_N_ELEMENTS (errors); i++)
    {
      g_assert_cmpuint (bs_error_http_status (errors[i]), ==, 500);
      g_assert_cmpstr (bs_error_code_name (errors[i]), ==, "INTERNAL_ERROR");
    }
}

static void
test_quark (void)
{
  g_assert_cmpuint (BS_ERROR, !=, 0);
  g_assert_cmpuint (BS_ERROR, ==, bs_error_quark ());
  g_assert_cmpuint (BS_ERROR, !=, G_IO_ERROR);
  /* G_DEFINE_QUARK stringifies its argument: a formatter that puts spaces
   * around the dashes changes the domain's name. */
  g_assert_cmpstr (g_quark_to_string (BS_ERROR), ==, "bs-error-quark");
}

static void
test_sqlstate (void)
{
  static const struct
  {
    const char *sqlstate;
    BsErrorCode code;
  } cases[] = {
    { "23505", BS_ERROR_CONFLICT },    /* unique_violation */
    { "23514", BS_ERROR_VALIDATION },  /* check_violation */
    { "23502", BS_ERROR_VALIDATION },  /* not_null_violation */
    { "23503", BS_ERROR_VALIDATION },  /* foreign_key_violation */
    { "22P02", BS_ERROR_VALIDATION },  /* invalid_text_representation */
    { "22003", BS_ERROR_VALIDATION },  /* numeric_value_out_of_range */
    { "40001", BS_ERROR_RETRY },       /* serialization_failure */
    { "40P01", BS_ERROR_RETRY },       /* deadlock_detected */
    { "57014", BS_ERROR_TIMEOUT },     /* query_canceled */
    { "08006", BS_ERROR_UNAVAILABLE }, /* connection_failure */
    { "08001", BS_ERROR_UNAVAILABLE }, /* sqlclient_unable_to_establish_sqlconnection */
    { "57P01", BS_ERROR_UNAVAILABLE }, /* admin_shutdown */
    { "57P03", BS_ERROR_UNAVAILABLE }, /* cannot_connect_now */
    { "53300", BS_ERROR_UNAVAILABLE }, /* too_many_connections */
    { "25006", BS_ERROR_UNAVAILABLE }, /* read_only_sql_transaction: a standby */
    { "25001", BS_ERROR_INTERNAL },    /* active_sql_transaction: our bug */
    { "XX000", BS_ERROR_INTERNAL },    /* internal_error */
    { "42P01", BS_ERROR_INTERNAL },    /* undefined_table: our bug */
    { "42601", BS_ERROR_INTERNAL },    /* syntax_error */
    { "", BS_ERROR_INTERNAL },         { NULL, BS_ERROR_UNAVAILABLE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      BsErrorCode got = bs_error_code_from_sqlstate (cases[i].sqlstate);
      if (got != cases[i].code)
        bs_test_fail ("SQLSTATE %s → %d, expected %d",
                      cases[i].sqlstate != NULL ? cases[i].sqlstate : "NULL", got, cases[i].code);
    }
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

  g_test_add_func ("/bs/error/table", test_table);
  g_test_add_func ("/bs/error/every-code", test_every_code);
  g_test_add_func ("/bs/error/config", test_config);
  g_test_add_func ("/bs/error/foreign", test_foreign);
  g_test_add_func ("/bs/error/quark", test_quark);
  g_test_add_func ("/bs/error/sqlstate", test_sqlstate);

  return g_test_run ();
}
