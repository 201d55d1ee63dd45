/* test-auth.c: the tokens file parser, the constant-time comparison, the
 * Authorization header, token files, and which requests need a token. */
#include "bs-auth.h"
#include "bs-error.h"
#include "bs-test.h"

#include <glib/gstdio.h>
#include <string.h>

static char *
sha256_hex (const char *token)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
}

static void
test_equal (void)
{
  guint8 a[32], b[32];

  for (guint i = 0; i < sizeof a; i++)
    a[i] = b[i] = (guint8) (i * 7);
  g_assert_true (bs_auth_equal (a, b, sizeof a));
  g_assert_true (bs_auth_equal (a, b, 0));
  /* a difference anywhere, first byte, last byte, one bit */
  for (guint i = 0; i < sizeof a; i++)
    for (guint bit = 0; bit < 8; bit++)
      {
        b[i] ^= (guint8) (1u << bit);
        if (bs_auth_equal (a, b, sizeof a))
          bs_test_fail ("byte %u bit %u differs, yet equal", i, bit);
        b[i] ^= (guint8) (1u << bit);
      }
  g_assert_true (bs_auth_equal (a, b, sizeof a));
}

static void
test_parse_good (void)
{
  g_autofree char *admin = sha256_hex ("s3cret-admin");
  g_autofree char *worker = sha256_hex ("s3cret-worker");
  g_autofree char *upper = g_ascii_strup (worker, -1);
  g_autofree char *text = g_strdup_printf ("# tokens of the test\n\n  admin:%s  \r\n"
                                           "   # an indented comment\n"
                                           "bookstore-worker.1@host : %s\n"
                                           "\t\n",
                                           admin, upper);
  g_autoptr (GError) error = NULL;
  g_autoptr (BsAuthTable) table = bs_auth_table_parse (text, strlen (text), &error);

  g_assert_no_error (error);
  g_assert_nonnull (table);
  g_assert_cmpuint (bs_auth_table_size (table), ==, 2);
  g_assert_cmpstr (bs_auth_table_lookup (table, "s3cret-admin", 12), ==, "admin");
  g_assert_cmpstr (bs_auth_table_lookup (table, "s3cret-worker", 13), ==,
                   "bookstore-worker.1@host");
  g_assert_null (bs_auth_table_lookup (table, "s3cret-admi", 11));
  g_assert_null (bs_auth_table_lookup (table, "s3cret-admin ", 13));
  g_assert_null (bs_auth_table_lookup (table, "", 0));
  /* the hash itself is not a token */
  g_assert_null (bs_auth_table_lookup (table, admin, strlen (admin)));
}

static void
test_parse_empty (void)
{
  const char *texts[] = { "", "\n\n", "# nothing yet\n", "  # x\r\n\r\n" };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BsAuthTable) table = bs_auth_table_parse (texts[i], strlen (texts[i]), &error);

      g_assert_no_error (error);
      g_assert_cmpuint (bs_auth_table_size (table), ==, 0);
      g_assert_null (bs_auth_table_lookup (table, "x", 1));
    }
}

static void
test_parse_bad (void)
{
  g_autofree char *hash = sha256_hex ("s3cret-admin");
  g_autofree char *good = g_strdup_printf ("admin:%s\n", hash);
  struct
  {
    char *line;   /* after one good line: the error names line 2 */
    guint number; /* the line named */
  } cases[] = {
    { g_strdup ("s3cret-token-pasted-by-mistake"), 2 },
    { g_strdup_printf (":%s", hash), 2 },        /* no name */
    { g_strdup ("admin2:"), 2 },                 /* no hash */
    { g_strdup_printf ("ad min:%s", hash), 2 },  /* space in the name */
    { g_strdup_printf ("admin/x:%s", hash), 2 }, /* '/' in the name */
    { g_strdup_printf ("%s:%s", "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnx",
                       hash),
      2 },                                                /* 65 characters */
    { g_strdup_printf ("admin2:%.63s", hash), 2 },        /* short hash */
    { g_strdup_printf ("admin2:%s0", hash), 2 },          /* long hash */
    { g_strdup_printf ("admin2:%.63sg", hash), 2 },       /* not hex */
    { g_strdup_printf ("admin2:%s:x", hash), 2 },         /* two colons */
    { g_strdup_printf ("admin2:%s # comment", hash), 2 }, /* no trailing comments */
    { g_strdup_printf ("other:%s", hash), 2 },            /* the same hash twice */
    { g_strdup_printf ("\n\n# x\nbad"), 5 },              /* counts blank lines */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strconcat (good, cases[i].line, "\n", NULL);
      g_autofree char *want = g_strdup_printf ("line %u:", cases[i].number);
      g_autoptr (GError) error = NULL;
      g_autoptr (BsAuthTable) table = bs_auth_table_parse (text, strlen (text), &error);

      if (table != NULL || !g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG))
        bs_test_fail ("case %u: accepted, or not a configuration error", i);
      else if (!g_str_has_prefix (error->message, want))
        bs_test_fail ("case %u: \"%s\" does not start with \"%s\"", i, error->message, want);
      else if (strstr (error->message, "s3cret") != NULL || strstr (error->message, hash) != NULL)
        bs_test_fail ("case %u: the message quotes the file: %s", i, error->message);
      g_free (cases[i].line);
    }
}

static void
test_parse_nul (void)
{
  g_autofree char *hash = sha256_hex ("t");
  g_autofree char *text = g_strdup_printf ("a:%s\n", hash);
  gsize len = strlen (text);
  g_autoptr (GError) error = NULL;
  g_autoptr (BsAuthTable) table = NULL;

  text[1] = '\0';
  table = bs_auth_table_parse (text, len, &error);
  g_assert_null (table);
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
}

static void
test_bearer (void)
{
  static const struct
  {
    const char *header;
    const char *token; /* NULL: refused */
  } cases[] = {
    { "Bearer abc", "abc" },
    { "bearer abc", "abc" },
    { "BEARER   a.b-c_d~e+f/g==", "a.b-c_d~e+f/g==" },
    { "Bearer abc  ", "abc" },
    { "Bearer", NULL },
    { "Bearer ", NULL },
    { "Bearerabc", NULL },
    { "Basic YWRtaW46eA==", NULL },
    { "Bearer abc def", NULL },
    { "Bearer\tabc", NULL },
    { "Bearer ab\001c", NULL },
    { "Bearer abc\xc3\xa9", NULL },
    { "", NULL },
    { "Token abc", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize len = 0;
      const char *token = bs_auth_parse_bearer (cases[i].header, &len);
      g_autofree char *got = token != NULL ? g_strndup (token, len) : NULL;

      if (g_strcmp0 (got, cases[i].token) != 0)
        bs_test_fail ("\"%s\": got %s, expected %s", cases[i].header, got ? got : "(refused)",
                      cases[i].token ? cases[i].token : "(refused)");
    }
  {
    g_autofree char *long_token = g_strnfill (BS_AUTH_TOKEN_MAX + 1, 'x');
    g_autofree char *header = g_strconcat ("Bearer ", long_token, NULL);
    gsize len = 0;

    g_assert_null (bs_auth_parse_bearer (header, &len));
    header[strlen (header) - 1] = '\0';
    g_assert_nonnull (bs_auth_parse_bearer (header, &len));
    g_assert_cmpuint (len, ==, BS_AUTH_TOKEN_MAX);
  }
}

static void
test_token_text (void)
{
  static const struct
  {
    const char *text;
    const char *token;
  } cases[] = {
    { "abc\n", "abc" }, { "  abc  \r\n", "abc" }, { "abc", "abc" },       { "", NULL },
    { "\n", NULL },     { "ab c\n", NULL },       { "abc\ndef\n", NULL }, { "ab\001c", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *token
          = bs_auth_token_from_text ("TOKEN_FILE", cases[i].text, strlen (cases[i].text), &error);

      if (g_strcmp0 (token, cases[i].token) != 0)
        bs_test_fail ("case %u: got %s", i, token ? token : "(refused)");
      if (token == NULL
          && (!g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG)
              || !g_str_has_prefix (error->message, "TOKEN_FILE")))
        bs_test_fail ("case %u: not a configuration error naming the file", i);
    }
}

/* A BsAuth from a real file: which requests need a token, the check, the
 * counter, and a replacement that fails keeping the tokens in use. */
static void
test_auth (void)
{
  g_autofree char *dir = g_dir_make_tmp ("test-auth-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "tokens", NULL);
  g_autofree char *hash = sha256_hex ("s3cret-admin");
  g_autofree char *text = g_strdup_printf ("admin:%s\n", hash);
  g_autofree char *new_hash = sha256_hex ("s3cret-new");
  g_autofree char *new_text = g_strdup_printf ("new:%s\n", new_hash);
  g_autoptr (GError) error = NULL;
  g_autoptr (BsAuth) auth = NULL;
  g_autoptr (BsMetrics) metrics = bs_metrics_new ();
  BsMetricFamily *counter = bs_auth_metrics_new (metrics);
  g_autofree char *rendered = NULL;
  char *subject = NULL;

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_setenv ("API_TOKENS_FILE", path, TRUE);
  auth = bs_auth_new_from_environment ((const char *const[]){ "/v1/orders", NULL }, &error);
  g_assert_no_error (error);
  g_assert_nonnull (auth);
  g_assert_cmpuint (bs_auth_get_n_tokens (auth), ==, 1);

  g_assert_true (bs_auth_is_protected (auth, "POST", "/v1/books"));
  g_assert_true (bs_auth_is_protected (auth, "DELETE", "/v1/books/1"));
  g_assert_true (bs_auth_is_protected (auth, "PATCH", "/v1/books/1"));
  g_assert_true (bs_auth_is_protected (auth, "GET", "/v1/orders"));
  g_assert_true (bs_auth_is_protected (auth, "HEAD", "/v1/orders/7"));
  g_assert_false (bs_auth_is_protected (auth, "GET", "/v1/books"));
  g_assert_false (bs_auth_is_protected (auth, "GET", "/v1/ordersx"));
  g_assert_false (bs_auth_is_protected (auth, "GET", "/health"));

  g_assert_cmpint (bs_auth_check (auth, counter, NULL, &subject), ==, BS_AUTH_MISSING);
  g_assert_cmpint (bs_auth_check (auth, counter, "Basic x", &subject), ==, BS_AUTH_MALFORMED);
  g_assert_cmpint (bs_auth_check (auth, counter, "Bearer nope", &subject), ==, BS_AUTH_UNKNOWN);
  g_assert_null (subject);
  g_assert_cmpint (bs_auth_check (auth, counter, "Bearer s3cret-admin", &subject), ==, BS_AUTH_OK);
  g_assert_cmpstr (subject, ==, "admin");
  g_clear_pointer (&subject, g_free);

  rendered = bs_metrics_render (metrics);
  g_assert_nonnull (strstr (rendered, "http_auth_total{subject=\"admin\",result=\"ok\"} 1"));
  g_assert_nonnull (strstr (rendered, "http_auth_total{subject=\"-\",result=\"unknown\"} 1"));
  g_assert_null (strstr (rendered, "s3cret"));

  /* a bad replacement keeps the tokens; a good one swaps them */
  g_assert_false (bs_auth_replace (auth, "bad line\n", 9, &error));
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "line 1"));
  g_clear_error (&error);
  g_assert_cmpint (bs_auth_check (auth, NULL, "Bearer s3cret-admin", &subject), ==, BS_AUTH_OK);
  g_clear_pointer (&subject, g_free);
  g_assert_true (bs_auth_replace (auth, new_text, strlen (new_text), &error));
  g_assert_no_error (error);
  g_assert_cmpint (bs_auth_check (auth, NULL, "Bearer s3cret-admin", &subject), ==,
                   BS_AUTH_UNKNOWN);
  g_assert_cmpint (bs_auth_check (auth, NULL, "Bearer s3cret-new", &subject), ==, BS_AUTH_OK);
  g_assert_cmpstr (subject, ==, "new");
  g_clear_pointer (&subject, g_free);

  g_unsetenv ("API_TOKENS_FILE");
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_environment (void)
{
  g_autofree char *dir = g_dir_make_tmp ("test-auth-XXXXXX", NULL);
  g_autofree char *credential = g_build_filename (dir, "api-tokens", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (BsAuth) none = NULL;
  g_autoptr (BsAuth) from_credential = NULL;
  g_autoptr (BsAuth) bad = NULL;

  g_unsetenv ("API_TOKENS_FILE");
  g_unsetenv ("CREDENTIALS_DIRECTORY");
  none = bs_auth_new_from_environment (NULL, &error);
  g_assert_no_error (error);
  g_assert_null (none);

  /* the credential, when there is no variable */
  g_setenv ("CREDENTIALS_DIRECTORY", dir, TRUE);
  none = bs_auth_new_from_environment (NULL, &error);
  g_assert_no_error (error);
  g_assert_null (none);
  g_assert_true (g_file_set_contents (credential, "# none yet\n", -1, NULL));
  from_credential = bs_auth_new_from_environment (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (from_credential);
  g_assert_cmpstr (bs_auth_get_source (from_credential), ==, "credential api-tokens");

  /* a variable naming no file; a malformed file names the line */
  g_setenv ("API_TOKENS_FILE", missing, TRUE);
  bad = bs_auth_new_from_environment (NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "API_TOKENS_FILE"));
  g_clear_error (&error);
  g_setenv ("API_TOKENS_FILE", credential, TRUE);
  g_assert_true (g_file_set_contents (credential, "\nx:y\n", -1, NULL));
  bad = bs_auth_new_from_environment (NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "line 2"));

  g_unsetenv ("API_TOKENS_FILE");
  g_unsetenv ("CREDENTIALS_DIRECTORY");
  g_unlink (credential);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/auth/equal", test_equal);
  g_test_add_func ("/bs/auth/parse/good", test_parse_good);
  g_test_add_func ("/bs/auth/parse/empty", test_parse_empty);
  g_test_add_func ("/bs/auth/parse/bad", test_parse_bad);
  g_test_add_func ("/bs/auth/parse/nul", test_parse_nul);
  g_test_add_func ("/bs/auth/bearer", test_bearer);
  g_test_add_func ("/bs/auth/token-text", test_token_text);
  g_test_add_func ("/bs/auth/check", test_auth);
  g_test_add_func ("/bs/auth/environment", test_environment);
  return g_test_run ();
}
