/* test-api-explorer.c: GET /docs: the assets' allow-list and types, ETag
 * matching, loading from a directory, DOCS_ASSETS_URL, the page and its CSP. */
#include "bs-api-explorer.h"
#include "bs-error.h"
#include "bs-test.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static void
test_asset_type (void)
{
  static const struct
  {
    const char *name;
    const char *type;
  } cases[] = {
    { "swagger-ui-bundle.js", "text/javascript; charset=utf-8" },
    { "swagger-ui.css", "text/css; charset=utf-8" },
    { "swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8" },
    { "LICENSE", "text/plain; charset=utf-8" },
    { "NOTICE", "text/plain; charset=utf-8" },
    /* nothing else: not other files of swagger-ui-dist, not near misses */
    { "", NULL },
    { "swagger-ui.js", NULL },
    { "swagger-ui-bundle.js.map", NULL },
    { "swagger-initializer.js", NULL },
    { "index.html", NULL },
    { "license", NULL },
    { "LICENSE/", NULL },
    { "./LICENSE", NULL },
    { "../LICENSE", NULL },
    { "/LICENSE", NULL },
    { "swagger-ui.css ", NULL },
    { "swagger-ui.css\n", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *type = bs_api_explorer_asset_type (cases[i].name);

      if (g_strcmp0 (type, cases[i].type) != 0)
        bs_test_fail ("\"%s\": type %s, expected %s", cases[i].name, type, cases[i].type);
    }
  g_assert_null (bs_api_explorer_asset_type (NULL));
}

static void
test_etag_matches (void)
{
  static const struct
  {
    const char *header;
    gboolean match;
  } cases[] = {
    { NULL, FALSE },
    { "", FALSE },
    { "\"abc\"", TRUE },
    { "W/\"abc\"", TRUE },
    { "  \"abc\"  ", TRUE },
    { "\"x\", \"abc\"", TRUE },
    { "\"x\",W/\"abc\",\"y\"", TRUE },
    { "*", TRUE },
    { "\"abcd\"", FALSE },
    { "\"ab\"", FALSE },
    { "abc", FALSE },
    { "\"x\", \"y\"", FALSE },
    { ",,,", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    if (bs_api_explorer_etag_matches (cases[i].header, "\"abc\"") != cases[i].match)
      bs_test_fail ("If-None-Match %s: expected %s", cases[i].header,
                    cases[i].match ? "a match" : "no match");
}

typedef struct
{
  char *dir;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer user_data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("bs-api-explorer-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer user_data)
{
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      if (g_remove (path) != 0)
        g_rmdir (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
}

static void
write_file (Fixture *f, const char *name, const char *contents)
{
  g_autofree char *path = g_build_filename (f->dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static char *
page_text (BsApiExplorer *explorer)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (bs_api_explorer_get_page (explorer), &len);

  return g_strndup (data, len);
}

static void
test_from_dir (Fixture *f, gconstpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BsApiExplorer) explorer = NULL;
  g_autofree char *page = NULL;

  write_file (f, "swagger-ui-bundle.js", "window.SwaggerUIBundle = function () {};\n");
  write_file (f, "swagger-ui.css", ".swagger-ui {}\n");
  explorer = bs_api_explorer_new ("bookstore-books API", f->dir, NULL, "DOCS_ASSETS_URL", &error);
  g_assert_no_error (error);
  g_assert_nonnull (explorer);
  /* the licences are optional */
  g_assert_null (bs_api_explorer_get_problem (explorer));
  g_assert_cmpstr (bs_api_explorer_get_assets_base (explorer), ==, "docs/assets");
  page = page_text (explorer);
  g_assert_nonnull (strstr (page, "<title>bookstore-books API</title>"));
  g_assert_nonnull (strstr (page, "<link rel=\"stylesheet\" href=\"docs/assets/swagger-ui.css\">"));
  g_assert_nonnull (strstr (page, "<script src=\"docs/assets/swagger-ui-bundle.js\"></script>"));
  g_assert_nonnull (strstr (page, "<script src=\"docs/init.js\"></script>"));
  g_assert_cmpstr (bs_api_explorer_get_csp (explorer), ==,
                   "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                   "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'");
}

static void
expect_problem (Fixture *f, const char *what)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BsApiExplorer) explorer
      = bs_api_explorer_new ("t", f->dir, NULL, "DOCS_ASSETS_URL", &error);
  const char *problem;

  /* never an error: a warning for the caller, and a 404 at /docs */
  g_assert_no_error (error);
  g_assert_nonnull (explorer);
  problem = bs_api_explorer_get_problem (explorer);
  g_assert_nonnull (problem);
  if (problem == NULL)
    return;
  g_assert_nonnull (strstr (problem, "not installed"));
  g_assert_nonnull (strstr (problem, f->dir));
  g_assert_nonnull (strstr (problem, what));
  g_assert_nonnull (strstr (problem, "DOCS_ASSETS_DIR"));
  g_assert_nonnull (strstr (problem, "DOCS_ASSETS_URL"));
}

static void
test_empty_dir (Fixture *f, gconstpointer user_data)
{
  expect_problem (f, "swagger-ui-bundle.js");
}

static void
test_missing_dir (Fixture *f, gconstpointer user_data)
{
  g_autofree char *parent = f->dir;

  f->dir = g_build_filename (parent, "nowhere", NULL);
  expect_problem (f, "No such file");
  g_free (f->dir);
  f->dir = g_steal_pointer (&parent);
}

static void
test_css_only (Fixture *f, gconstpointer user_data)
{
  write_file (f, "swagger-ui.css", ".swagger-ui {}\n");
  expect_problem (f, "swagger-ui-bundle.js");
}

static void
test_not_a_file (Fixture *f, gconstpointer user_data)
{
  g_autofree char *path = g_build_filename (f->dir, "swagger-ui-bundle.js", NULL);

  write_file (f, "swagger-ui.css", ".swagger-ui {}\n");
  g_assert_cmpint (g_mkdir (path, 0700), ==, 0);
  expect_problem (f, "not a regular file");
}

static void
test_too_large (Fixture *f, gconstpointer user_data)
{
  g_autofree char *path = g_build_filename (f->dir, "swagger-ui-bundle.js", NULL);
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  /* sparse: no disk space used */
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) BS_API_EXPLORER_MAX_ASSET + 1), ==, 0);
  close (fd);
  write_file (f, "swagger-ui.css", ".swagger-ui {}\n");
  expect_problem (f, "at most");
}

static void
test_url (void)
{
  static const struct
  {
    const char *url;
    const char *base;
    const char *origin;
  } cases[] = {
    { "https://cdn.example.org/swagger-ui-dist@5.36.0",
      "https://cdn.example.org/swagger-ui-dist@5.36.0", "https://cdn.example.org" },
    { "https://cdn.example.org/sui/", "https://cdn.example.org/sui", "https://cdn.example.org" },
    { "https://cdn.example.org", "https://cdn.example.org", "https://cdn.example.org" },
    { "http://127.0.0.1:8080/", "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
    { "http://[::1]:8443/sui", "http://[::1]:8443/sui", "http://[::1]:8443" },
    { "https://cdn.example.org:443/sui", "https://cdn.example.org:443/sui",
      "https://cdn.example.org:443" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BsApiExplorer) explorer
          = bs_api_explorer_new ("t", "/nonexistent", cases[i].url, "DOCS_ASSETS_URL", &error);
      g_autofree char *page = NULL;
      g_autofree char *script = NULL;
      g_autofree char *script_src = NULL;

      if (explorer == NULL)
        {
          bs_test_fail ("%s refused: %s", cases[i].url, error->message);
          continue;
        }
      /* the directory is not read: no problem though it does not exist */
      g_assert_null (bs_api_explorer_get_problem (explorer));
      if (g_strcmp0 (bs_api_explorer_get_assets_base (explorer), cases[i].base) != 0)
        bs_test_fail ("%s: base %s", cases[i].url, bs_api_explorer_get_assets_base (explorer));
      page = page_text (explorer);
      script = g_strdup_printf ("<script src=\"%s/swagger-ui-bundle.js\"></script>", cases[i].base);
      if (strstr (page, script) == NULL)
        bs_test_fail ("%s: the page has no %s", cases[i].url, script);
      script_src = g_strdup_printf ("script-src 'self' %s;", cases[i].origin);
      if (strstr (bs_api_explorer_get_csp (explorer), script_src) == NULL)
        bs_test_fail ("%s: CSP %s", cases[i].url, bs_api_explorer_get_csp (explorer));
    }
}

static void
test_bad_url (void)
{
  static const char *const cases[] = {
    "garbage",
    "cdn.example.org/sui",
    "//cdn.example.org/sui",
    "ftp://cdn.example.org/sui",
    "file:///usr/share/bookstore/swagger-ui",
    "javascript:alert(1)",
    "data:text/javascript,alert(1)",
    "https://",
    "https:///sui",
    "https://cdn.example.org/sui?v=5",
    "https://cdn.example.org/sui#top",
    "https://user:secret@cdn.example.org/sui",
    "https://cdn.example.org/a b",
    "https://cdn.example.org/\"><script>alert(1)</script>",
    "https://cdn.example.org/'",
    "https://cdn.example.org/x;script-src *",
    "https://cdn.example.org/x,y",
    "https://cdn.example.org/\xc3\xa9",
    "https://cdn.example.org/\t",
    "https://cdn.example.org/%zz",
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BsApiExplorer) explorer
          = bs_api_explorer_new ("t", "/nonexistent", cases[i], "DOCS_ASSETS_URL", &error);

      if (explorer != NULL)
        bs_test_fail ("\"%s\" accepted (base %s)", cases[i],
                      bs_api_explorer_get_assets_base (explorer));
      else if (!g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG)
               || strstr (error->message, "DOCS_ASSETS_URL=") == NULL)
        bs_test_fail ("\"%s\": %s", cases[i], error->message);
    }
}

static void
test_title_escaped (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BsApiExplorer) explorer = bs_api_explorer_new (
      "<b>A & B</b>", "/nonexistent", "https://cdn.example.org", "DOCS_ASSETS_URL", &error);
  g_autofree char *page = NULL;

  g_assert_no_error (error);
  page = page_text (explorer);
  g_assert_nonnull (strstr (page, "<title>&lt;b&gt;A &amp; B&lt;/b&gt;</title>"));
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/api-explorer/asset-type", test_asset_type);
  g_test_add_func ("/bs/api-explorer/etag-matches", test_etag_matches);
  g_test_add ("/bs/api-explorer/dir", Fixture, NULL, fixture_setup, test_from_dir,
              fixture_teardown);
  g_test_add ("/bs/api-explorer/dir-empty", Fixture, NULL, fixture_setup, test_empty_dir,
              fixture_teardown);
  g_test_add ("/bs/api-explorer/dir-missing", Fixture, NULL, fixture_setup, test_missing_dir,
              fixture_teardown);
  g_test_add ("/bs/api-explorer/dir-css-only", Fixture, NULL, fixture_setup, test_css_only,
              fixture_teardown);
  g_test_add ("/bs/api-explorer/dir-not-a-file", Fixture, NULL, fixture_setup, test_not_a_file,
              fixture_teardown);
  g_test_add ("/bs/api-explorer/dir-too-large", Fixture, NULL, fixture_setup, test_too_large,
              fixture_teardown);
  g_test_add_func ("/bs/api-explorer/url", test_url);
  g_test_add_func ("/bs/api-explorer/bad-url", test_bad_url);
  g_test_add_func ("/bs/api-explorer/title-escaped", test_title_escaped);
  return g_test_run ();
}
