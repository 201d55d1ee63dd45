/* books-main.c: bookstore-books — the Books REST service. */
#include "books-app.h"

#include "bs-build-config.h"
#include "bs-main.h"

static const char environment_help[]
    = "  BOOKS_DB_DSN              PostgreSQL DSN, URI or key=value (required); several\n"
      "                            hosts with target_session_attrs=read-write\n"
      "  BOOKS_DB_READ_DSN         a standby for GETs (optional; the primary while it is away)\n"
      "  BOOKS_DB_READ_POOL_SIZE   connections to it (default: BOOKS_DB_POOL_SIZE)\n"
      "  PORT                      TCP port to listen on (default 8001)\n"
      "  BIND_ADDRESS              IP address to listen on (default 0.0.0.0)\n"
      "  BOOKS_DB_POOL_SIZE        database connections, shared by the loops (default 4)\n"
      "  BOOKS_THREADS             event loops serving requests (default: one per CPU)\n"
      "  BOOKS_DB_TIMEOUT_MS       deadline of one database query (default 5000)\n"
      "  BOOKS_DB_PIPELINE_DEPTH   reads in flight on one connection (default 32)\n"
      "  HTTP_REQUEST_TIMEOUT_MS   deadline to receive a request, and keep-alive\n"
      "                            idle limit (default 15000)\n"
      "  API_TOKENS_FILE           name:sha256 lines; set (or credential api-tokens),\n"
      "                            writes need a bearer token (SIGHUP re-reads it)\n"
      "  TLS_CERT_FILE, TLS_KEY_FILE  HTTPS with this certificate and key (or\n"
      "                            credentials tls-cert, tls-key; SIGHUP re-reads them)\n"
      "  RATE_LIMIT_WRITES         writes a second per client address (default 0: off)\n"
      "  DOCS_ASSETS_DIR           Swagger UI for GET /docs (default\n"
      "                            " BS_SWAGGER_UI_DIR ")\n"
      "  DOCS_ASSETS_URL           load Swagger UI from this URL instead (default: unset)\n";

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BooksApp) app = NULL;
  BsMainOptions options = { 0 };
  guint n_applied = 0;
  int status = bs_main_parse_options ("bookstore-books", "- the Bookstore Books service",
                                      environment_help, &argc, &argv, &options);

  if (status >= 0)
    return status;
  app = books_app_new (&error);
  if (app == NULL)
    return bs_main_failed ("cannot start", error);
  if (options.migrate)
    return books_app_migrate (app, &n_applied, &error) ? bs_main_migrated (n_applied)
                                                       : bs_main_failed ("migration failed", error);
  if (!books_app_start (app, &error))
    return bs_main_failed ("cannot start", error);
  return books_app_run (app);
}
