/* books-api.c: validate synchronously, pause, query, reply from the callback. */
#include "books-api.h"

#include "books-book.h"
#include "books-store.h"

#include "bs-error.h"
#include "bs-money.h"
#include "bs-pagination.h"
#include "bs-request.h"

#define HEALTH_TIMEOUT_MS 1000

/* Reply 200 with row 0, 404 with no row, 410 when the row is inactive. */
static void
reply_book_row (BsRequest *request, const PGresult *res, guint ok_status)
{
  g_autoptr (GString) body = NULL;

  if (PQntuples (res) == 0)
    {
      bs_request_reply_error_literal (request, BS_ERROR_NOT_FOUND, "book not found");
      return;
    }
  if (!g_str_equal (PQgetvalue (res, 0, BOOKS_BOOK_COL_ACTIVE), "t"))
    {
      bs_request_reply_error_literal (request, BS_ERROR_GONE, "book was deleted");
      return;
    }
  body = g_string_sized_new (512);
  books_book_append_json (body, res, 0, 0);
  bs_request_reply_string (request, ok_status, g_steal_pointer (&body));
}

/* The {id} path parameter as decimal text for a query, or reply 400. */
static gboolean
id_param_or_reply (BsRequest *request, char id_text[32])
{
  g_autoptr (GError) error = NULL;
  gint64 id = 0;

  if (!bs_request_get_id_param (request, "id", &id, &error))
    {
      bs_request_reply_error (request, error);
      return FALSE;
    }
  g_snprintf (id_text, 32, "%" G_GINT64_FORMAT, id);
  return TRUE;
}

/* ---- the context every async handler hands to its callback ------------- */

typedef struct
{
  BsRequest *request;
  BooksApi *api;
  BsPage page; /* GET /v1/books only */
  /* a read: where it went, and what to ask the primary if the replica fails */
  BsDbPool *pool;
  const char *statement;
  char params[2][32];
  guint n_params;
  GAsyncReadyCallback done;
  /* GET /health with a replica: the two answers */
  int primary_ok; /* -1 until known */
  int replica_ok;
} CallContext;

static void
call_context_free (CallContext *ctx)
{
  bs_request_unref (ctx->request);
  g_free (ctx);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CallContext, call_context_free)

static CallContext *
call_context_new (BooksApi *api, BsRequest *request)
{
  CallContext *ctx = g_new0 (CallContext, 1);

  ctx->api = api;
  ctx->request = bs_request_ref (request);
  ctx->pool = api->pool;
  ctx->primary_ok = ctx->replica_ok = -1;
  bs_request_pause (request);
  return ctx;
}

/* ---- reads: from the replica while it is up, else from the primary ------ */

static void
read_start (CallContext *ctx)
{
  const char *params[] = { ctx->params[0], ctx->params[1] };

  bs_db_pool_query_async (ctx->pool, ctx->statement, params, ctx->n_params, 0,
                          bs_request_get_cancellable (ctx->request), ctx->done, ctx);
}

/* Run read-only @statement with @n_params (at most 2) parameters, on the
 * replica's pool when it has a connection up. */
static void
read_async (BooksApi *api, CallContext *ctx, const char *statement, const char *const *params,
            guint n_params, GAsyncReadyCallback done)
{
  ctx->statement = statement;
  ctx->n_params = MIN (n_params, G_N_ELEMENTS (ctx->params));
  for (guint i = 0; i < ctx->n_params; i++)
    g_strlcpy (ctx->params[i], params[i], sizeof ctx->params[i]);
  ctx->done = done;
  if (api->read_pool != NULL && bs_db_pool_is_connected (api->read_pool))
    ctx->pool = api->read_pool;
  read_start (ctx);
}

/* The read's result; or NULL after replying with its error, or after asking
 * the primary again (*@ctxp is then taken) when the replica went away
 * meanwhile: a read may run twice, a client never sees the replica's 503
 * while the primary answers. */
static PGresult *
read_finish (CallContext **ctxp, GAsyncResult *result)
{
  CallContext *ctx = *ctxp;
  g_autoptr (GError) error = NULL;
  PGresult *res = bs_db_pool_query_finish (ctx->pool, result, &error);

  if (res != NULL)
    return res;
  if (ctx->pool != ctx->api->pool && g_error_matches (error, BS_ERROR, BS_ERROR_UNAVAILABLE))
    {
      ctx->pool = ctx->api->pool;
      read_start (g_steal_pointer (ctxp));
      return NULL;
    }
  bs_request_reply_error (ctx->request, error);
  return NULL;
}

/* ---- GET /v1/books ------------------------------------------------------- */

static void
list_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res = read_finish (&ctx, result);
  g_autoptr (GString) body = NULL;
  gint64 total = 0;
  gboolean first = TRUE;

  if (res == NULL)
    return;
  if (PQntuples (res) > 0)
    total = g_ascii_strtoll (PQgetvalue (res, 0, 0), NULL, 10);
  body = g_string_sized_new (512);
  g_string_append_c (body, '[');
  for (int row = 0; row < PQntuples (res); row++)
    if (!PQgetisnull (res, row, 1))
      {
        if (!first)
          g_string_append_c (body, ',');
        first = FALSE;
        books_book_append_json (body, res, row, 1);
      }
  g_string_append_c (body, ']');
  bs_page_set_headers (ctx->request, &ctx->page, total);
  bs_request_reply_string (ctx->request, 200, g_steal_pointer (&body));
}

static void
handle_list (BsRequest *request, gpointer user_data)
{
  BooksApi *api = user_data;
  g_autoptr (GError) error = NULL;
  BsPage page;
  CallContext *ctx;
  char limit[32], offset[32];

  if (!bs_page_from_request (request, &page, &error))
    {
      bs_request_reply_error (request, error);
      return;
    }
  g_snprintf (limit, sizeof limit, "%" G_GINT64_FORMAT, page.limit);
  g_snprintf (offset, sizeof offset, "%" G_GINT64_FORMAT, page.offset);
  ctx = call_context_new (api, request);
  ctx->page = page;
  read_async (api, ctx, BOOKS_SQL_LIST, (const char *const[]){ limit, offset }, 2, list_done);
}

static void
get_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res = read_finish (&ctx, result);

  if (res != NULL)
    reply_book_row (ctx->request, res, 200);
}

/* PUT answers the way GET does: the row, 404 or 410. */
static void
book_row_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);

  if (res != NULL)
    reply_book_row (ctx->request, res, 200);
}

static void
handle_get (BsRequest *request, gpointer user_data)
{
  BooksApi *api = user_data;
  char id_text[32];

  if (!id_param_or_reply (request, id_text))
    return;
  read_async (api, call_context_new (api, request), BOOKS_SQL_GET, (const char *const[]){ id_text },
              1, get_done);
}

static void
create_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);
  g_autofree char *location = NULL;

  if (res == NULL)
    return;
  location = g_strdup_printf ("/v1/books/%s", PQgetvalue (res, 0, 0));
  bs_request_set_header (ctx->request, "Location", location);
  reply_book_row (ctx->request, res, 201);
}

static void
handle_create (BsRequest *request, gpointer user_data)
{
  BooksApi *api = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = bs_request_parse_json_object (request, &error);
  g_auto (BooksBookInput) input = { 0 };
  g_autofree char *price = NULL;

  if (object == NULL || !books_book_input_parse (object, FALSE, &input, &error))
    {
      bs_request_reply_error (request, error);
      return;
    }
  price = bs_money_format (input.price_cents);
  bs_db_pool_query_async (
      api->pool, BOOKS_SQL_CREATE,
      (const char *const[]){ input.title, input.author, input.description, price }, 4, 0,
      NULL /* a create runs to the end even if the client leaves */, create_done,
      call_context_new (api, request));
}

static void
handle_update (BsRequest *request, gpointer user_data)
{
  BooksApi *api = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = NULL;
  g_auto (BooksBookInput) input = { 0 };
  g_autofree char *price = NULL;
  char id_text[32];

  if (!id_param_or_reply (request, id_text))
    return;
  if ((object = bs_request_parse_json_object (request, &error)) == NULL
      || !books_book_input_parse (object, TRUE, &input, &error))
    {
      bs_request_reply_error (request, error);
      return;
    }
  if (input.has_price)
    price = bs_money_format (input.price_cents);
  bs_db_pool_query_async (api->pool, BOOKS_SQL_UPDATE,
                          (const char *const[]){ id_text, input.title, input.author,
                                                 input.has_description ? "true" : "false",
                                                 input.description, price },
                          6, 0, NULL, book_row_done, call_context_new (api, request));
}

static void
delete_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);

  if (res == NULL)
    return;
  if (g_str_equal (PQgetvalue (res, 0, 0), "t"))
    bs_request_reply_empty (ctx->request, 204);
  else if (g_str_equal (PQgetvalue (res, 0, 1), "t"))
    bs_request_reply_error_literal (ctx->request, BS_ERROR_GONE, "book was already deleted");
  else
    bs_request_reply_error_literal (ctx->request, BS_ERROR_NOT_FOUND, "book not found");
}

static void
handle_delete (BsRequest *request, gpointer user_data)
{
  BooksApi *api = user_data;
  char id_text[32];

  if (!id_param_or_reply (request, id_text))
    return;
  bs_db_pool_query_async (api->pool, BOOKS_SQL_DELETE, (const char *const[]){ id_text }, 1, 0, NULL,
                          delete_done, call_context_new (api, request));
}

/* ---- GET /health ---------------------------------------------------------- */

/* @replica_ok: -1 without a replica. Both up: 200 "healthy". One of them
 * away: 200 "degraded", since the catalogue can still be read (from the
 * primary, or from the replica while the primary is away: a switchover;
 * writes are then answered 503 one by one), so a load balancer keeps the
 * host for GETs. Neither: 503. */
static void
reply_health (BsRequest *request, gboolean healthy, int replica_ok)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) body = NULL;
  const char *state = healthy ? "healthy" : "unhealthy";
  gboolean readable = healthy || replica_ok == 1;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, !readable                    ? "unhealthy"
                                          : healthy && replica_ok != 0 ? "healthy"
                                                                       : "degraded");
  json_builder_set_member_name (builder, "services");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "database");
  json_builder_add_string_value (builder, state);
  if (replica_ok >= 0)
    {
      json_builder_set_member_name (builder, "database_replica");
      json_builder_add_string_value (builder, replica_ok ? "healthy" : "unhealthy");
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);
  bs_request_reply_json (request, readable ? 200 : 503, body);
}

/* Each ping's answer; the reply once both are in. The context is shared
 * by the two pings and freed by the second answer. */
static void
health_answered (CallContext *ctx)
{
  g_autoptr (CallContext) owned = NULL;

  if (ctx->primary_ok < 0 || (ctx->api->read_pool != NULL && ctx->replica_ok < 0))
    return;
  owned = ctx;
  reply_health (ctx->request, ctx->primary_ok, ctx->api->read_pool != NULL ? ctx->replica_ok : -1);
}

static void
health_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallContext *ctx = user_data;

  ctx->primary_ok = bs_db_pool_ping_finish (ctx->api->pool, result);
  health_answered (ctx);
}

static void
replica_health_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallContext *ctx = user_data;

  ctx->replica_ok = bs_db_pool_ping_finish (ctx->api->read_pool, result);
  health_answered (ctx);
}

static void
handle_health (BsRequest *request, gpointer user_data)
{
  BooksApi *api = user_data;
  CallContext *ctx;

  if (!bs_migrator_is_ready (api->migrator))
    {
      reply_health (request, FALSE, -1);
      return;
    }
  ctx = call_context_new (api, request);
  bs_db_pool_ping_async (api->pool, HEALTH_TIMEOUT_MS, health_done, ctx);
  if (api->read_pool != NULL)
    bs_db_pool_ping_async (api->read_pool, HEALTH_TIMEOUT_MS, replica_health_done, ctx);
}

void
books_api_register (BooksApi *api, BsRouter *router)
{
  bs_router_add (router, "GET", "/v1/books", handle_list, api);
  bs_router_add (router, "POST", "/v1/books", handle_create, api);
  bs_router_add (router, "GET", "/v1/books/{id}", handle_get, api);
  bs_router_add (router, "PUT", "/v1/books/{id}", handle_update, api);
  bs_router_add (router, "DELETE", "/v1/books/{id}", handle_delete, api);
  bs_router_add (router, "GET", "/health", handle_health, api);
}
