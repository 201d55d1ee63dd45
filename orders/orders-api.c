/* orders-api.c: validate synchronously, pause, then query or call Books, and
 * reply from the last callback. */
#include "orders-api.h"

#include "orders-order.h"
#include "orders-store.h"

#include "bs-error.h"
#include "bs-idempotency-key.h"
#include "bs-json-writer.h"
#include "bs-money.h"
#include "bs-pagination.h"
#include "bs-request.h"

#define HEALTH_TIMEOUT_MS 1000

/* ---- the context every async handler hands to its callback ------------- */

typedef struct
{
  BsRequest *request;
  OrdersApi *api;
  BsPage page;            /* GET /v1/orders */
  OrdersOrderInput input; /* POST /v1/orders */
  char *idempotency_key;  /* POST /v1/orders, may be NULL */
  char *fingerprint;      /* of input, with a key */
  gboolean lost_key_race; /* a concurrent request inserted the key first */
  guint health_pending;   /* GET /health: checks still running */
  gboolean database_healthy;
  gboolean books_healthy;
} CallContext;

static void
call_context_free (CallContext *ctx)
{
  bs_request_unref (ctx->request);
  g_free (ctx->idempotency_key);
  g_free (ctx->fingerprint);
  g_free (ctx);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CallContext, call_context_free)

static CallContext *
call_context_new (OrdersApi *api, BsRequest *request)
{
  CallContext *ctx = g_new0 (CallContext, 1);

  ctx->api = api;
  ctx->request = bs_request_ref (request);
  bs_request_pause (request);
  return ctx;
}

static void
reply_order (BsRequest *request, guint status, const PGresult *res, int row, int first_col)
{
  g_autoptr (BsJsonWriter) writer = bs_json_writer_new ();
  g_autoptr (GBytes) body = NULL;

  orders_order_write_json (writer, res, row, first_col);
  body = bs_json_writer_free_to_bytes (g_steal_pointer (&writer));
  bs_request_reply_bytes (request, status, "application/json", body);
}

static void
set_location (BsRequest *request, const char *id)
{
  g_autofree char *location = g_strdup_printf ("/v1/orders/%s", id);

  bs_request_set_header (request, "Location", location);
}

/* ---- GET /v1/orders -------------------------------------------------------- */

static void
list_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);
  g_autoptr (BsJsonWriter) writer = NULL;
  g_autoptr (GBytes) body = NULL;
  gint64 total = 0;

  if (res == NULL)
    return;
  writer = bs_json_writer_new ();
  if (PQntuples (res) > 0)
    total = g_ascii_strtoll (PQgetvalue (res, 0, 0), NULL, 10);
  bs_json_writer_begin_array (writer);
  for (int row = 0; row < PQntuples (res); row++)
    if (!PQgetisnull (res, row, 1))
      orders_order_write_json (writer, res, row, 1);
  bs_json_writer_end_array (writer);
  body = bs_json_writer_free_to_bytes (g_steal_pointer (&writer));
  bs_page_set_headers (ctx->request, &ctx->page, total);
  bs_request_reply_bytes (ctx->request, 200, "application/json", body);
}

static void
handle_list (BsRequest *request, gpointer user_data)
{
  OrdersApi *api = user_data;
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
  bs_db_pool_query_async (api->pool, ORDERS_SQL_LIST, (const char *const[]){ limit, offset }, 2, 0,
                          bs_request_get_cancellable (request), list_done, ctx);
}

/* ---- GET /v1/orders/{id} ----------------------------------------------------- */

static void
get_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);

  if (res == NULL)
    return;
  if (PQntuples (res) == 0)
    bs_request_reply_error_literal (ctx->request, BS_ERROR_NOT_FOUND, "order not found");
  else
    reply_order (ctx->request, 200, res, 0, 0);
}

static void
handle_get (BsRequest *request, gpointer user_data)
{
  OrdersApi *api = user_data;
  g_autoptr (GError) error = NULL;
  gint64 id = 0;
  char id_text[32];

  if (!bs_request_get_id_param (request, "id", &id, &error))
    {
      bs_request_reply_error (request, error);
      return;
    }
  g_snprintf (id_text, sizeof id_text, "%" G_GINT64_FORMAT, id);
  bs_db_pool_query_async (api->pool, ORDERS_SQL_GET, (const char *const[]){ id_text }, 1, 0,
                          bs_request_get_cancellable (request), get_done,
                          call_context_new (api, request));
}

/* ---- POST /v1/orders ----------------------------------------------------------
 *
 * With an Idempotency-Key: look the key up first (a replay needs neither
 * Books nor a new row), else fetch the book, insert order and key in one
 * statement; if a concurrent request won the key meanwhile, look it up again.
 * Without a key: fetch the book, insert. */

static void fetch_book (CallContext *ctx);
static void lookup_key (CallContext *ctx);

/* The key is known: replay the order it created, or refuse another body. */
static void
reply_known_key (CallContext *ctx, const PGresult *res)
{
  OrdersApi *api = ctx->api;

  if (!g_str_equal (PQgetvalue (res, 0, 0), ctx->fingerprint))
    {
      bs_metric_inc (api->conflicts, NULL, 1);
      bs_request_reply_error_literal (
          ctx->request, BS_ERROR_IDEMPOTENCY_CONFLICT,
          "Idempotency-Key was already used with a different request body");
      return;
    }
  if (PQgetisnull (res, 0, 1))
    {
      /* the key row commits with its order, so this is a key whose order
       * was removed by hand: nothing to replay, and no new order for it */
      bs_request_reply_error_literal (ctx->request, BS_ERROR_IDEMPOTENCY_CONFLICT,
                                      "Idempotency-Key was used by an order that no longer exists");
      return;
    }
  bs_metric_inc (api->replays, NULL, 1);
  set_location (ctx->request, PQgetvalue (res, 0, 1));
  bs_request_set_header (ctx->request, "Idempotent-Replayed", "true");
  reply_order (ctx->request, 201, res, 0, 1);
}

/* The key looked up: replay or refuse when known. Unknown on the first
 * lookup: a new order. Unknown after losing the insert race: the winner's
 * key was purged in between; let the client retry. */
static void
key_looked_up (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);

  if (res == NULL)
    return;
  if (PQntuples (res) > 0)
    reply_known_key (ctx, res);
  else if (!ctx->lost_key_race)
    fetch_book (g_steal_pointer (&ctx));
  else
    bs_request_reply_error_literal (ctx->request, BS_ERROR_RETRY,
                                    "Idempotency-Key changed concurrently; retry");
}

static void
insert_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  g_autoptr (PGresult) res
      = bs_db_pool_query_finish_or_reply (ctx->api->pool, result, ctx->request);

  if (res == NULL)
    return;
  if (PQntuples (res) == 0)
    {
      /* the key was taken by a concurrent request after our first lookup */
      ctx->lost_key_race = TRUE;
      lookup_key (g_steal_pointer (&ctx));
      return;
    }
  bs_metric_inc (ctx->api->created, NULL, 1);
  if (ctx->api->relay != NULL)
    orders_relay_kick (ctx->api->relay); /* its event goes out now, not at the next tick */
  set_location (ctx->request, PQgetvalue (res, 0, 0));
  reply_order (ctx->request, 201, res, 0, 0);
}

static void
book_fetched (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (CallContext) ctx = user_data;
  OrdersApi *api = ctx->api;
  g_autoptr (GError) error = NULL;
  guint retry_after_s = 1;
  g_autoptr (OrdersBook) book
      = orders_books_get_book_finish (api->books, result, &retry_after_s, &error);
  g_autofree char *unit = NULL, *total = NULL;
  const char *key, *fingerprint, *tracestate;
  char book_id[32], quantity[32];
  char traceparent[BS_TRACEPARENT_LEN + 1];

  if (book == NULL)
    {
      if (g_error_matches (error, BS_ERROR, BS_ERROR_UNAVAILABLE))
        {
          char retry_after[16];
          g_snprintf (retry_after, sizeof retry_after, "%u", retry_after_s);
          bs_request_set_header (ctx->request, "Retry-After", retry_after);
        }
      bs_request_reply_error (ctx->request, error);
      return;
    }
  /* exact: cents × quantity fits easily (99999999.99 × 10000 < 2^63) */
  unit = bs_money_format (book->price_cents);
  total = bs_money_format (book->price_cents * ctx->input.quantity);
  g_snprintf (book_id, sizeof book_id, "%" G_GINT64_FORMAT, ctx->input.book_id);
  g_snprintf (quantity, sizeof quantity, "%" G_GINT64_FORMAT, ctx->input.quantity);
  /* the parameters are copied when the query is queued, before ctx moves on */
  key = ctx->idempotency_key;
  fingerprint = ctx->fingerprint;
  /* the event names this request's span as the parent of the worker's */
  bs_trace_format (bs_request_get_trace (ctx->request), traceparent);
  tracestate = bs_request_get_tracestate (ctx->request);
  bs_db_pool_query_async (api->pool, key == NULL ? ORDERS_SQL_CREATE : ORDERS_SQL_CREATE_WITH_KEY,
                          (const char *const[]){ book_id, book->title, book->author, quantity, unit,
                                                 total, traceparent, tracestate, key, fingerprint },
                          key == NULL ? 8 : 10, 0,
                          NULL /* an order runs to the end even if the client leaves */,
                          insert_done, g_steal_pointer (&ctx));
}

static void
fetch_book (CallContext *ctx)
{
  orders_books_get_book_async (
      ctx->api->books, ctx->input.book_id, bs_request_get_id (ctx->request),
      bs_request_get_trace (ctx->request), bs_request_get_tracestate (ctx->request),
      bs_request_get_cancellable (ctx->request), book_fetched, ctx);
}

static void
lookup_key (CallContext *ctx)
{
  bs_db_pool_query_async (ctx->api->pool, ORDERS_SQL_FIND_KEY,
                          (const char *const[]){ ctx->idempotency_key }, 1, 0, NULL, key_looked_up,
                          ctx);
}

static void
handle_create (BsRequest *request, gpointer user_data)
{
  OrdersApi *api = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = bs_request_parse_json_object (request, &error);
  const char *key = bs_request_get_header (request, "Idempotency-Key");
  OrdersOrderInput input = { 0 };
  CallContext *ctx;

  if (object == NULL || !orders_order_input_parse (object, &input, &error)
      || !bs_idempotency_key_check (key, &error))
    {
      bs_request_reply_error (request, error);
      return;
    }
  ctx = call_context_new (api, request);
  ctx->input = input;
  if (key == NULL)
    {
      fetch_book (ctx);
      return;
    }
  ctx->idempotency_key = g_strdup (key);
  ctx->fingerprint = orders_order_input_fingerprint (&input);
  lookup_key (ctx);
}

/* ---- GET /health ------------------------------------------------------------
 *
 * Redis is reported but does not make the service unhealthy: orders are
 * still accepted while it is away, and their events wait in the outbox. */

static gboolean
redis_healthy (OrdersApi *api)
{
  return api->relay != NULL && api->status != NULL && orders_relay_is_connected (api->relay)
         && orders_status_is_connected (api->status);
}

static void
reply_health (CallContext *ctx)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonNode) body = NULL;
  gboolean healthy = ctx->database_healthy && ctx->books_healthy;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, healthy ? "healthy" : "unhealthy");
  json_builder_set_member_name (builder, "services");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "database");
  json_builder_add_string_value (builder, ctx->database_healthy ? "healthy" : "unhealthy");
  json_builder_set_member_name (builder, "books");
  json_builder_add_string_value (builder, ctx->books_healthy ? "healthy" : "unhealthy");
  json_builder_set_member_name (builder, "redis");
  json_builder_add_string_value (builder, redis_healthy (ctx->api) ? "healthy" : "unhealthy");
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);
  bs_request_reply_json (ctx->request, healthy ? 200 : 503, body);
}

/* Both checks run at once; the last to finish replies. */
static void
health_check_done (CallContext *ctx)
{
  if (--ctx->health_pending == 0)
    {
      reply_health (ctx);
      call_context_free (ctx);
    }
}

static void
database_checked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallContext *ctx = user_data;

  ctx->database_healthy = bs_db_pool_ping_finish (ctx->api->pool, result);
  health_check_done (ctx);
}

static void
books_checked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallContext *ctx = user_data;

  ctx->books_healthy = orders_books_check_health_finish (ctx->api->books, result);
  health_check_done (ctx);
}

static void
handle_health (BsRequest *request, gpointer user_data)
{
  OrdersApi *api = user_data;
  CallContext *ctx = call_context_new (api, request);

  ctx->health_pending = 2;
  if (bs_migrator_is_ready (api->migrator))
    bs_db_pool_ping_async (api->pool, HEALTH_TIMEOUT_MS, database_checked, ctx);
  else
    health_check_done (ctx); /* database_healthy stays FALSE */
  orders_books_check_health_async (api->books, HEALTH_TIMEOUT_MS, books_checked, ctx);
}

void
orders_api_init_metrics (OrdersApi *api, BsMetrics *metrics)
{
  api->created = bs_metrics_counter (metrics, "orders_created_total", "Orders created", NULL);
  api->replays = bs_metrics_counter (
      metrics, "orders_idempotent_replays_total",
      "Order creations answered with the order an earlier request with the same Idempotency-Key "
      "created",
      NULL);
  api->conflicts = bs_metrics_counter (
      metrics, "orders_idempotency_conflicts_total",
      "Order creations refused: Idempotency-Key reused with a different body", NULL);
  bs_metric_inc (api->created, NULL, 0);
  bs_metric_inc (api->replays, NULL, 0);
  bs_metric_inc (api->conflicts, NULL, 0);
}

void
orders_api_register (OrdersApi *api, BsRouter *router)
{
  bs_router_add (router, "GET", "/v1/orders", handle_list, api);
  bs_router_add (router, "POST", "/v1/orders", handle_create, api);
  bs_router_add (router, "GET", "/v1/orders/{id}", handle_get, api);
  bs_router_add (router, "GET", "/health", handle_health, api);
}
