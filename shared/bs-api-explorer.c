/* bs-api-explorer.c: GET /docs, Swagger UI on the service's /openapi.json. */
#include "bs-api-explorer.h"

#include "bs-error.h"
#include "bs-request.h"
#include "bs-resources.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#define INIT_RESOURCE "/org/bookstore/shared/bs-api-explorer.js"
#define LOCAL_ASSETS "docs/assets"
#define HTML_TYPE "text/html; charset=utf-8"
#define JS_TYPE "text/javascript; charset=utf-8"
/* Swagger UI's files change only with a new package: a day, then revalidate */
#define ASSET_CACHE_CONTROL "public, max-age=86400"
/* the page and its script change with the daemon: revalidate each time */
#define PAGE_CACHE_CONTROL "no-cache"

typedef struct
{
  const char *name;
  const char *content_type;
  gboolean required; /* the page cannot work without it */
} AssetSpec;

/* The allow-list: /docs/assets/ serves these names and nothing else
 * (data/swagger-ui/fetch.sh copies the same files). */
static const AssetSpec asset_specs[] = {
  { "swagger-ui-bundle.js", JS_TYPE, TRUE },
  { "swagger-ui.css", "text/css; charset=utf-8", TRUE },
  { "swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8", FALSE },
  { "LICENSE", "text/plain; charset=utf-8", FALSE },
  { "NOTICE", "text/plain; charset=utf-8", FALSE },
};

typedef struct
{
  GBytes *body; /* NULL: not loaded */
  char *etag;
} Asset;

struct _BsApiExplorer
{
  char *assets_base; /* "docs/assets", or DOCS_ASSETS_URL without a trailing '/' */
  gboolean from_url; /* the browser loads the assets from assets_base */
  char *problem;     /* why /docs cannot work, or NULL */
  char *csp;
  GBytes *page;
  char *page_etag;
  GBytes *init_js;
  char *init_etag;
  Asset assets[G_N_ELEMENTS (asset_specs)];
};

static int
asset_index (const char *name)
{
  for (guint i = 0; name != NULL && i < G_N_ELEMENTS (asset_specs); i++)
    if (g_str_equal (name, asset_specs[i].name))
      return (int) i;
  return -1;
}

const char *
bs_api_explorer_asset_type (const char *name)
{
  int i = asset_index (name);

  return i < 0 ? NULL : asset_specs[i].content_type;
}

gboolean
bs_api_explorer_etag_matches (const char *if_none_match, const char *etag)
{
  g_auto (GStrv) candidates = NULL;

  if (if_none_match == NULL)
    return FALSE;
  candidates = g_strsplit (if_none_match, ",", -1);
  for (char **c = candidates; *c != NULL; c++)
    {
      const char *tag = g_strstrip (*c);

      if (g_str_has_prefix (tag, "W/"))
        tag += 2;
      if (g_str_equal (tag, "*") || g_str_equal (tag, etag))
        return TRUE;
    }
  return FALSE;
}

static char *
etag_of_bytes (GBytes *bytes)
{
  g_autofree char *sum = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);

  return g_strdup_printf ("\"%.16s\"", sum);
}

/* Characters a URL could use to break out of an HTML attribute or the
 * Content-Security-Policy header, which the page puts it in. */
static gboolean
url_chars_safe (const char *url)
{
  for (const char *p = url; *p != '\0'; p++)
    if ((guchar) *p <= 0x20 || (guchar) *p >= 0x7f || strchr ("\"'<>\\^`{|};,", *p) != NULL)
      return FALSE;
  return TRUE;
}

/* The URL without trailing '/', and its origin for the CSP. */
static gboolean
parse_assets_url (const char *variable, const char *url, char **base, char **origin, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  const char *scheme = NULL;
  gsize len;

  if (url_chars_safe (url))
    uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, NULL); /* no default port filled in */
  if (uri != NULL)
    scheme = g_uri_get_scheme (uri);
  if (uri == NULL || (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL
      || g_uri_get_userinfo (uri) != NULL)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_CONFIG,
                   "%s=\"%s\" is invalid: expected http(s)://host[:port][/path], where "
                   "swagger-ui-bundle.js and swagger-ui.css are",
                   variable, url);
      return FALSE;
    }
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    len--;
  *base = g_strndup (url, len);
  *origin = g_uri_join (G_URI_FLAGS_NONE, scheme, NULL, g_uri_get_host (uri), g_uri_get_port (uri),
                        "", NULL, NULL);
  return TRUE;
}

/* Read one allowed file; FALSE with @error when it is missing or unusable. */
static gboolean
load_asset (Asset *asset, const char *dir, const char *name, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *contents = NULL;
  GStatBuf st;
  gsize len = 0;

  if (g_stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "%s: %s", path,
                   g_strerror (saved_errno));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode) || st.st_size > BS_API_EXPLORER_MAX_ASSET)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: not a regular file of at most %d bytes", path, BS_API_EXPLORER_MAX_ASSET);
      return FALSE;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    return FALSE;
  asset->body = g_bytes_new_take (g_steal_pointer (&contents), len);
  /* as static file servers do: what changes with the file, without hashing
   * megabytes at every start */
  asset->etag = g_strdup_printf ("\"%" G_GINT64_MODIFIER "x-%" G_GSIZE_MODIFIER "x\"",
                                 (gint64) st.st_mtime, len);
  return TRUE;
}

static void
load_assets (BsApiExplorer *explorer, const char *dir)
{
  for (guint i = 0; i < G_N_ELEMENTS (asset_specs); i++)
    {
      g_autoptr (GError) error = NULL;

      if (load_asset (&explorer->assets[i], dir, asset_specs[i].name, &error)
          || !asset_specs[i].required || explorer->problem != NULL)
        continue;
      explorer->problem = g_strdup_printf (
          "the API explorer's assets (Swagger UI) are not installed (%s): install the "
          "bookstore-common package or build with meson -Dswagger_ui=enabled, point "
          "%s at a directory that holds swagger-ui-bundle.js and swagger-ui.css, or set %s to a "
          "URL that serves them",
          error->message, BS_API_EXPLORER_DIR_VARIABLE, BS_API_EXPLORER_URL_VARIABLE);
    }
}

/* Scripts and styles from here or the assets' origin only; no inline
 * script, no eval; requests ("Try it out") to this origin only. */
static char *
make_csp (const char *assets_origin)
{
  g_autofree char *extra
      = assets_origin != NULL ? g_strconcat (" ", assets_origin, NULL) : g_strdup ("");

  return g_strdup_printf ("default-src 'none'; script-src 'self'%s; style-src 'self'%s; "
                          "img-src 'self' data:%s; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'",
                          extra, extra, extra);
}

/* Relative references: the page is /docs, so they resolve to /docs/...
 * (and keep a proxy's path prefix). */
static GBytes *
make_page (const char *title, const char *assets_base)
{
  g_autofree char *t = g_markup_escape_text (title, -1);
  g_autofree char *a = g_markup_escape_text (assets_base, -1);
  char *html = g_strdup_printf ("<!DOCTYPE html>\n"
                                "<html lang=\"en\">\n"
                                "<head>\n"
                                "<meta charset=\"utf-8\">\n"
                                "<meta name=\"viewport\" content=\"width=device-width, "
                                "initial-scale=1\">\n"
                                "<title>%s</title>\n"
                                "<link rel=\"icon\" href=\"data:,\">\n"
                                "<link rel=\"stylesheet\" href=\"%s/swagger-ui.css\">\n"
                                "</head>\n"
                                "<body>\n"
                                "<div id=\"swagger-ui\"></div>\n"
                                "<script src=\"%s/swagger-ui-bundle.js\"></script>\n"
                                "<script src=\"docs/init.js\"></script>\n"
                                "</body>\n"
                                "</html>\n",
                                t, a, a);

  return g_bytes_new_take (html, strlen (html));
}

static void
register_resources_once (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      bs_register_resource ();
      g_once_init_leave (&done, 1);
    }
}

BsApiExplorer *
bs_api_explorer_new (const char *title, const char *assets_dir, const char *assets_url,
                     const char *url_variable, GError **error)
{
  g_autoptr (BsApiExplorer) explorer = g_new0 (BsApiExplorer, 1);
  g_autofree char *origin = NULL;

  g_return_val_if_fail (title != NULL, NULL);
  g_return_val_if_fail (assets_dir != NULL || assets_url != NULL, NULL);
  if (assets_url != NULL)
    {
      if (!parse_assets_url (url_variable, assets_url, &explorer->assets_base, &origin, error))
        return NULL;
      explorer->from_url = TRUE;
    }
  else
    {
      explorer->assets_base = g_strdup (LOCAL_ASSETS);
      load_assets (explorer, assets_dir);
    }
  register_resources_once ();
  explorer->init_js = g_resources_lookup_data (INIT_RESOURCE, 0, error);
  if (explorer->init_js == NULL)
    return NULL; /* compiled in: never */
  explorer->init_etag = etag_of_bytes (explorer->init_js);
  explorer->csp = make_csp (origin);
  explorer->page = make_page (title, explorer->assets_base);
  explorer->page_etag = etag_of_bytes (explorer->page);
  return g_steal_pointer (&explorer);
}

void
bs_api_explorer_free (BsApiExplorer *explorer)
{
  if (explorer == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (explorer->assets); i++)
    {
      g_clear_pointer (&explorer->assets[i].body, g_bytes_unref);
      g_free (explorer->assets[i].etag);
    }
  g_clear_pointer (&explorer->page, g_bytes_unref);
  g_clear_pointer (&explorer->init_js, g_bytes_unref);
  g_free (explorer->page_etag);
  g_free (explorer->init_etag);
  g_free (explorer->csp);
  g_free (explorer->problem);
  g_free (explorer->assets_base);
  g_free (explorer);
}

const char *
bs_api_explorer_get_problem (BsApiExplorer *explorer)
{
  return explorer->problem;
}

const char *
bs_api_explorer_get_assets_base (BsApiExplorer *explorer)
{
  return explorer->assets_base;
}

GBytes *
bs_api_explorer_get_page (BsApiExplorer *explorer)
{
  return explorer->page;
}

const char *
bs_api_explorer_get_csp (BsApiExplorer *explorer)
{
  return explorer->csp;
}

/* ---- handlers: every loop's; they only read the explorer ---------------- */

/* 200 with @body, or 304 when the client holds @etag already. */
static void
reply_cached (BsRequest *request, const char *content_type, GBytes *body, const char *etag,
              const char *cache_control)
{
  bs_request_set_header (request, "ETag", etag);
  bs_request_set_header (request, "Cache-Control", cache_control);
  bs_request_set_header (request, "X-Content-Type-Options", "nosniff");
  if (bs_api_explorer_etag_matches (bs_request_get_header (request, "If-None-Match"), etag))
    bs_request_reply_empty (request, SOUP_STATUS_NOT_MODIFIED);
  else
    bs_request_reply_bytes (request, SOUP_STATUS_OK, content_type, body);
}

static void
handle_page (BsRequest *request, gpointer user_data)
{
  BsApiExplorer *explorer = user_data;

  if (explorer->problem != NULL)
    {
      bs_request_reply_error_literal (request, BS_ERROR_NOT_FOUND, explorer->problem);
      return;
    }
  bs_request_set_header (request, "Content-Security-Policy", explorer->csp);
  bs_request_set_header (request, "Referrer-Policy", "no-referrer");
  reply_cached (request, HTML_TYPE, explorer->page, explorer->page_etag, PAGE_CACHE_CONTROL);
}

static void
handle_init (BsRequest *request, gpointer user_data)
{
  BsApiExplorer *explorer = user_data;

  reply_cached (request, JS_TYPE, explorer->init_js, explorer->init_etag, PAGE_CACHE_CONTROL);
}

static void
handle_asset (BsRequest *request, gpointer user_data)
{
  BsApiExplorer *explorer = user_data;
  int i = asset_index (bs_request_get_param (request, "file"));

  if (i < 0 || explorer->assets[i].body == NULL)
    {
      bs_request_reply_error_literal (
          request, BS_ERROR_NOT_FOUND,
          i >= 0 && explorer->from_url
              ? "the API explorer loads its assets from " BS_API_EXPLORER_URL_VARIABLE
              : "no such file among the API explorer's assets");
      return;
    }
  reply_cached (request, asset_specs[i].content_type, explorer->assets[i].body,
                explorer->assets[i].etag, ASSET_CACHE_CONTROL);
}

void
bs_api_explorer_add_routes (BsApiExplorer *explorer, BsRouter *router)
{
  bs_router_add (router, "GET", "/docs", handle_page, explorer);
  bs_router_add (router, "GET", "/docs/init.js", handle_init, explorer);
  bs_router_add (router, "GET", "/docs/assets/{file}", handle_asset, explorer);
}
