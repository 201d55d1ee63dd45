/* test-router.c: method + path-template routing. */
#include "bs-router.h"
#include "bs-test.h"

#include <glib.h>
#include <string.h>

typedef struct
{
  BsRouter *router;
  guint calls[8]; /* per handler id */
} Fixture;

static void
handler (BsRequest *request, gpointer user_data)
{
  guint *counter = user_data;

  (*counter)++;
}

static void
fixture_setup (Fixture *f, gconstpointer user_data)
{
  f->router = bs_router_new ();
  bs_router_add (f->router, "GET", "/healthz", handler, &f->calls[0]);
  bs_router_add (f->router, "GET", "/v1/books", handler, &f->calls[1]);
  bs_router_add (f->router, "POST", "/v1/books", handler, &f->calls[2]);
  bs_router_add (f->router, "GET", "/v1/books/{id}", handler, &f->calls[3]);
  bs_router_add (f->router, "PUT", "/v1/books/{id}", handler, &f->calls[4]);
  bs_router_add (f->router, "DELETE", "/v1/books/{id}", handler, &f->calls[5]);
  bs_router_add (f->router, "POST", "/v1/orders/{order_id}/items/{item_id}", handler, &f->calls[6]);
  bs_router_add (f->router, "POST", "/v1/orders", handler, &f->calls[7]);
}

static void
fixture_teardown (Fixture *f, gconstpointer user_data)
{
  g_clear_pointer (&f->router, bs_router_free);
}

typedef struct
{
  BsRouteMatch match;
  const BsRoute *route;
  GHashTable *params;
  char *allow;
} Match;

static void
match_clear (Match *m)
{
  g_clear_pointer (&m->params, g_hash_table_unref);
  g_clear_pointer (&m->allow, g_free);
}

static void
do_match (Fixture *f, const char *method, const char *path, Match *m)
{
  memset (m, 0, sizeof *m);
  m->match = bs_router_match (f->router, method, path, &m->route, &m->params, &m->allow);
}

/* FOUND for @template; returns the params table (owned by @m) */
static GHashTable *
expect_found (Fixture *f, const char *method, const char *path, const char *template, Match *m)
{
  do_match (f, method, path, m);
  if (m->match != BS_ROUTE_FOUND)
    {
      bs_test_fail ("%s %s: expected FOUND (%s), got %d", method, path, template, m->match);
      return NULL;
    }
  if (m->route == NULL || g_strcmp0 (bs_route_get_template (m->route), template) != 0)
    bs_test_fail ("%s %s: matched %s, expected %s", method, path,
                  m->route != NULL ? bs_route_get_template (m->route) : "(null)", template);
  if (m->params == NULL)
    bs_test_fail ("%s %s: no params table", method, path);
  if (m->allow != NULL)
    bs_test_fail ("%s %s: allow set on FOUND", method, path);
  return m->params;
}

static void
expect_not_found (Fixture *f, const char *method, const char *path)
{
  Match m;

  do_match (f, method, path, &m);
  if (m.match != BS_ROUTE_NOT_FOUND)
    bs_test_fail ("%s %s: expected NOT_FOUND, got %d", method, path, m.match);
  if (m.params != NULL || m.allow != NULL)
    bs_test_fail ("%s %s: outputs set on NOT_FOUND", method, path);
  match_clear (&m);
}

/* METHOD_NOT_ALLOWED with exactly the methods in @allowed (any order, no
 * duplicates). */
static void
expect_not_allowed (Fixture *f, const char *method, const char *path, const char *const *allowed)
{
  Match m;
  g_auto (GStrv) got = NULL;

  do_match (f, method, path, &m);
  if (m.match != BS_ROUTE_METHOD_NOT_ALLOWED)
    {
      bs_test_fail ("%s %s: expected METHOD_NOT_ALLOWED, got %d", method, path, m.match);
      match_clear (&m);
      return;
    }
  if (m.allow == NULL)
    {
      bs_test_fail ("%s %s: no Allow list", method, path);
      match_clear (&m);
      return;
    }
  if (m.params != NULL)
    bs_test_fail ("%s %s: params set on METHOD_NOT_ALLOWED", method, path);
  /* the template of the path, for metrics and logs */
  if (m.route == NULL)
    bs_test_fail ("%s %s: no route template on METHOD_NOT_ALLOWED", method, path);
  else if (g_str_has_prefix (path, "/v1/books/")
           && g_strcmp0 (bs_route_get_template (m.route), "/v1/books/{id}") != 0)
    bs_test_fail ("%s %s: template %s", method, path, bs_route_get_template (m.route));

  got = g_strsplit (m.allow, ", ", -1);
  if (g_strv_length (got) != g_strv_length ((char **) allowed))
    bs_test_fail ("%s %s: Allow \"%s\" has %u entries, expected %u", method, path, m.allow,
                  g_strv_length (got), g_strv_length ((char **) allowed));
  for (guint i = 0; allowed[i] != NULL; i++)
    if (!g_strv_contains ((const char *const *) got, allowed[i]))
      bs_test_fail ("%s %s: Allow \"%s\" lacks %s", method, path, m.allow, allowed[i]);
  for (guint i = 0; got[i] != NULL; i++)
    {
      if (g_str_equal (got[i], method))
        bs_test_fail ("%s %s: Allow \"%s\" lists the refused method", method, path, m.allow);
      for (guint j = i + 1; got[j] != NULL; j++)
        if (g_str_equal (got[i], got[j]))
          bs_test_fail ("%s %s: Allow \"%s\" lists %s twice", method, path, m.allow, got[i]);
    }
  match_clear (&m);
}

static void
test_literal (Fixture *f, gconstpointer user_data)
{
  Match m;
  GHashTable *params = expect_found (f, "GET", "/v1/books", "/v1/books", &m);

  if (params != NULL)
    g_assert_cmpuint (g_hash_table_size (params), ==, 0);
  match_clear (&m);

  expect_found (f, "POST", "/v1/books", "/v1/books", &m);
  match_clear (&m);
  expect_found (f, "GET", "/healthz", "/healthz", &m);
  match_clear (&m);
}

static void
test_params (Fixture *f, gconstpointer user_data)
{
  Match m;
  GHashTable *params = expect_found (f, "GET", "/v1/books/42", "/v1/books/{id}", &m);

  if (params != NULL)
    {
      g_assert_cmpuint (g_hash_table_size (params), ==, 1);
      g_assert_cmpstr (g_hash_table_lookup (params, "id"), ==, "42");
    }
  match_clear (&m);

  params = expect_found (f, "DELETE", "/v1/books/abc-DEF_1.2", "/v1/books/{id}", &m);
  if (params != NULL)
    g_assert_cmpstr (g_hash_table_lookup (params, "id"), ==, "abc-DEF_1.2");
  match_clear (&m);

  params = expect_found (f, "POST", "/v1/orders/7/items/9", "/v1/orders/{order_id}/items/{item_id}",
                         &m);
  if (params != NULL)
    {
      g_assert_cmpuint (g_hash_table_size (params), ==, 2);
      g_assert_cmpstr (g_hash_table_lookup (params, "order_id"), ==, "7");
      g_assert_cmpstr (g_hash_table_lookup (params, "item_id"), ==, "9");
    }
  match_clear (&m);
}

/* Each match returns a new table the caller owns. */
static void
test_params_new_table (Fixture *f, gconstpointer user_data)
{
  Match a;
  Match b;

  expect_found (f, "GET", "/v1/books/1", "/v1/books/{id}", &a);
  expect_found (f, "GET", "/v1/books/2", "/v1/books/{id}", &b);
  g_assert_true (a.params != b.params);
  if (a.params != NULL && b.params != NULL)
    {
      g_assert_cmpstr (g_hash_table_lookup (a.params, "id"), ==, "1");
      g_assert_cmpstr (g_hash_table_lookup (b.params, "id"), ==, "2");
    }
  match_clear (&a);
  match_clear (&b);
}

static void
test_not_found (Fixture *f, gconstpointer user_data)
{
  expect_not_found (f, "GET", "/");
  expect_not_found (f, "GET", "");
  expect_not_found (f, "GET", NULL);
  expect_not_found (f, "GET", "v1/books");
  expect_not_found (f, "GET", "/v1");
  expect_not_found (f, "GET", "/v1/book");
  expect_not_found (f, "GET", "/v1/booksx");
  expect_not_found (f, "GET", "/V1/BOOKS");
  expect_not_found (f, "GET", "/nope");
  expect_not_found (f, "GET", "/v1/books/42/extra");
  expect_not_found (f, "GET", "/v1/authors/42");
  expect_not_found (f, "POST", "/v1/orders/7/items");
  expect_not_found (f, "POST", "/v1/orders/7/items/");
  expect_not_found (f, "POST", "/v1/orders//items/9");
}

static void
test_trailing_slash (Fixture *f, gconstpointer user_data)
{
  expect_not_found (f, "GET", "/v1/books/");
  expect_not_found (f, "GET", "/healthz/");
  expect_not_found (f, "GET", "/v1/books/42/");
  expect_not_found (f, "GET", "//v1/books");
  expect_not_found (f, "GET", "/v1//books");
}

static void
test_method_not_allowed (Fixture *f, gconstpointer user_data)
{
  const char *const books[] = { "GET", "HEAD", "POST", NULL };
  const char *const book[] = { "GET", "HEAD", "PUT", "DELETE", NULL };
  const char *const orders[] = { "POST", NULL };
  const char *const health[] = { "GET", "HEAD", NULL };

  expect_not_allowed (f, "DELETE", "/v1/books", books);
  expect_not_allowed (f, "PATCH", "/v1/books", books);
  expect_not_allowed (f, "POST", "/v1/books/42", book);
  expect_not_allowed (f, "get", "/v1/books/42", book); /* methods are case-sensitive */
  expect_not_allowed (f, "GET", "/v1/orders", orders);
  expect_not_allowed (f, "HEAD", "/v1/orders", orders);
  expect_not_allowed (f, "POST", "/healthz", health);
}

static void
test_head (Fixture *f, gconstpointer user_data)
{
  Match m;
  GHashTable *params = expect_found (f, "HEAD", "/v1/books/42", "/v1/books/{id}", &m);

  if (params != NULL)
    g_assert_cmpstr (g_hash_table_lookup (params, "id"), ==, "42");
  match_clear (&m);
  expect_found (f, "HEAD", "/healthz", "/healthz", &m);
  match_clear (&m);
}

/* An explicit HEAD route is not listed twice with the implicit one. */
static void
test_head_explicit (void)
{
  g_autoptr (BsRouter) router = bs_router_new ();
  guint calls = 0;
  const BsRoute *route = NULL;
  GHashTable *params = NULL;
  char *allow = NULL;
  g_auto (GStrv) methods = NULL;
  guint n_head = 0;

  bs_router_add (router, "HEAD", "/x", handler, &calls);
  bs_router_add (router, "GET", "/x", handler, &calls);
  g_assert_cmpint (bs_router_match (router, "PUT", "/x", &route, &params, &allow), ==,
                   BS_ROUTE_METHOD_NOT_ALLOWED);
  g_assert_nonnull (allow);
  if (allow == NULL)
    return;
  methods = g_strsplit (allow, ", ", -1);
  for (guint i = 0; methods[i] != NULL; i++)
    n_head += g_str_equal (methods[i], "HEAD");
  g_assert_cmpuint (n_head, ==, 1);
  g_assert_true (g_strv_contains ((const char *const *) methods, "GET"));
  g_free (allow);
}

static void
test_invoke (Fixture *f, gconstpointer user_data)
{
  Match m;

  expect_found (f, "PUT", "/v1/books/5", "/v1/books/{id}", &m);
  if (m.route != NULL)
    {
      bs_route_invoke (m.route, NULL);
      bs_route_invoke (m.route, NULL);
    }
  g_assert_cmpuint (f->calls[4], ==, 2);
  for (guint i = 0; i < G_N_ELEMENTS (f->calls); i++)
    if (i != 4)
      g_assert_cmpuint (f->calls[i], ==, 0);
  match_clear (&m);

  expect_found (f, "HEAD", "/v1/books", "/v1/books", &m);
  if (m.route != NULL)
    bs_route_invoke (m.route, NULL);
  g_assert_cmpuint (f->calls[1], ==, 1); /* the GET handler */
  match_clear (&m);
}

/* A literal route registered before a parameter route of the same shape
 * takes precedence for its own path only. */
static void
test_literal_and_param (void)
{
  g_autoptr (BsRouter) router = bs_router_new ();
  guint literal = 0;
  guint param = 0;
  const BsRoute *route = NULL;
  GHashTable *params = NULL;
  char *allow = NULL;

  bs_router_add (router, "GET", "/v1/books/search", handler, &literal);
  bs_router_add (router, "GET", "/v1/books/{id}", handler, &param);

  g_assert_cmpint (bs_router_match (router, "GET", "/v1/books/search", &route, &params, &allow), ==,
                   BS_ROUTE_FOUND);
  g_assert_cmpstr (bs_route_get_template (route), ==, "/v1/books/search");
  g_clear_pointer (&params, g_hash_table_unref);

  g_assert_cmpint (bs_router_match (router, "GET", "/v1/books/12", &route, &params, &allow), ==,
                   BS_ROUTE_FOUND);
  g_assert_cmpstr (bs_route_get_template (route), ==, "/v1/books/{id}");
  if (params != NULL)
    g_assert_cmpstr (g_hash_table_lookup (params, "id"), ==, "12");
  g_clear_pointer (&params, g_hash_table_unref);
  g_assert_null (allow);
}

static void
test_root (void)
{
  g_autoptr (BsRouter) router = bs_router_new ();
  guint calls = 0;
  const BsRoute *route = NULL;
  GHashTable *params = NULL;
  char *allow = NULL;

  bs_router_add (router, "GET", "/", handler, &calls);
  g_assert_cmpint (bs_router_match (router, "GET", "/", &route, &params, &allow), ==,
                   BS_ROUTE_FOUND);
  g_clear_pointer (&params, g_hash_table_unref);
  g_assert_cmpint (bs_router_match (router, "GET", "/x", &route, &params, &allow), ==,
                   BS_ROUTE_NOT_FOUND);
  g_assert_cmpint (bs_router_match (router, "GET", "//", &route, &params, &allow), ==,
                   BS_ROUTE_NOT_FOUND);
  g_assert_null (params);
  g_assert_null (allow);
}

static void
test_empty_router (void)
{
  g_autoptr (BsRouter) router = bs_router_new ();
  const BsRoute *route = NULL;
  GHashTable *params = NULL;
  char *allow = NULL;

  g_assert_cmpint (bs_router_match (router, "GET", "/", &route, &params, &allow), ==,
                   BS_ROUTE_NOT_FOUND);
  g_assert_null (route);
  g_assert_null (params);
  g_assert_null (allow);
  bs_router_free (NULL); /* destructors accept NULL */
}

static void
collect_route (const char *method, const char *path_template, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%s %s", method, path_template));
}

/* Every route as added, in order (the HTTP server makes their metric series). */
static void
test_foreach (Fixture *f, gconstpointer user_data)
{
  const char *const expected[] = { "GET /healthz",
                                   "GET /v1/books",
                                   "POST /v1/books",
                                   "GET /v1/books/{id}",
                                   "PUT /v1/books/{id}",
                                   "DELETE /v1/books/{id}",
                                   "POST /v1/orders/{order_id}/items/{item_id}",
                                   "POST /v1/orders",
                                   NULL };
  g_autoptr (GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);

  bs_router_foreach (f->router, collect_route, seen);
  g_ptr_array_add (seen, NULL);
  g_assert_true (g_strv_equal ((const char *const *) seen->pdata, expected));
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/bs/router/literal", test_literal);
  ADD ("/bs/router/params", test_params);
  ADD ("/bs/router/params-new-table", test_params_new_table);
  ADD ("/bs/router/not-found", test_not_found);
  ADD ("/bs/router/trailing-slash", test_trailing_slash);
  ADD ("/bs/router/method-not-allowed", test_method_not_allowed);
  ADD ("/bs/router/head", test_head);
  ADD ("/bs/router/invoke", test_invoke);
  ADD ("/bs/router/foreach", test_foreach);
#undef ADD
  g_test_add_func ("/bs/router/head-explicit", test_head_explicit);
  g_test_add_func ("/bs/router/literal-and-param", test_literal_and_param);
  g_test_add_func ("/bs/router/root", test_root);
  g_test_add_func ("/bs/router/empty", test_empty_router);

  return g_test_run ();
}
