/* orders-books.c: the Books client: one HTTP call per book, classified into
 * an outcome that feeds the circuit breaker, the metrics and the reply. */
#include "orders-books.h"

#include "bs-build-config.h"
#include "bs-circuit-breaker.h"
#include "bs-error.h"
#include "bs-http-client.h"
#include "bs-json.h"
#include "bs-log.h"
#include "bs-money.h"
#include "bs-single-flight.h"

/* Longer than any title or author Books accepts; the rest is Books' contract. */
#define BOOK_TEXT_MAX 10000

struct _OrdersBooks
{
  BsHttpClient *client;
  BsCircuitBreaker *breaker;
  guint timeout_ms;
  guint max_in_flight; /* max_connections + max_waiting */
  guint in_flight;     /* book lookups sent and not answered yet */
  BsSingleFlight *health;
  guint health_timeout_ms;  /* of the health check in progress */
  BsMetricFamily *requests; /* books_requests_total{result} */
  BsMetricFamily *duration; /* books_request_duration_seconds */
  BsMetricFamily *state;    /* books_circuit_state */
  BsMetricFamily *opens;    /* books_circuit_opens_total */
};

/* How a call to Books ended: the books_requests_total{result} label, and
 * whether it counts against Books in the circuit breaker. */
typedef enum
{
  OUTCOME_SUCCESS,
  OUTCOME_NOT_FOUND,
  OUTCOME_GONE,
  OUTCOME_CLIENT_ERROR,
  OUTCOME_SERVER_ERROR,
  OUTCOME_TIMEOUT,
  OUTCOME_CONNECTION_ERROR,
  OUTCOME_INVALID_RESPONSE,
  OUTCOME_REJECTED, /* refused by the open circuit: Books not called */
  OUTCOME_SHED,     /* too many calls waiting already: Books not called */
  N_OUTCOMES,
} Outcome;

static const struct
{
  const char *label;
  gboolean failure;
} outcomes[N_OUTCOMES] = {
  [OUTCOME_SUCCESS] = { "success", FALSE },
  [OUTCOME_NOT_FOUND] = { "not_found", FALSE },
  [OUTCOME_GONE] = { "gone", FALSE },
  [OUTCOME_CLIENT_ERROR] = { "client_error", FALSE },
  [OUTCOME_SERVER_ERROR] = { "server_error", TRUE },
  [OUTCOME_TIMEOUT] = { "timeout", TRUE },
  [OUTCOME_CONNECTION_ERROR] = { "connection_error", TRUE },
  [OUTCOME_INVALID_RESPONSE] = { "invalid_response", TRUE },
  [OUTCOME_REJECTED] = { "rejected", FALSE },
  [OUTCOME_SHED] = { "shed", FALSE },
};

typedef struct
{
  OrdersBooks *books;
  gint64 book_id;
  BsCircuitPermit permit;
  gint64 started_us;
  guint retry_after_s;
  char trace_id[BS_TRACE_ID_LEN + 1]; /* the call's: the exemplar of its latency */
} GetCall;

void
orders_book_free (OrdersBook *book)
{
  if (book == NULL)
    return;
  g_free (book->title);
  g_free (book->author);
  g_free (book);
}

static void
circuit_changed (BsCircuitBreaker *breaker, BsCircuitState state, gpointer user_data)
{
  OrdersBooks *books = user_data;
  const char *name = bs_circuit_state_to_string (state);

  bs_metric_set (books->state, NULL, state);
  if (state == BS_CIRCUIT_OPEN)
    bs_metric_inc (books->opens, NULL, 1);
  g_log_structured (
      G_LOG_DOMAIN, state == BS_CIRCUIT_CLOSED ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_WARNING,
      "CIRCUIT", "books", "CIRCUIT_STATE", name, "MESSAGE", "Books circuit %s%s", name,
      state == BS_CIRCUIT_OPEN        ? ": order creation fails fast until the cooldown ends"
      : state == BS_CIRCUIT_HALF_OPEN ? ": the next order probes Books"
                                      : ": Books answers again");
}

OrdersBooks *
orders_books_new (const OrdersBooksOptions *options, OrdersBooks *share_breaker_of,
                  BsMetrics *metrics, GError **error)
{
  static const char *const result_label[] = { "result", NULL };
  g_autoptr (BsHttpClient) client
      = bs_http_client_new ("BOOKS_SERVICE_URL", options->base_url, "bookstore-orders/" BS_VERSION,
                            options->max_connections, error);
  OrdersBooks *books;

  if (client == NULL
      || !bs_http_client_set_ca_file (client, "BOOKS_CA_FILE", options->ca_file, error))
    return NULL;
  books = g_new0 (OrdersBooks, 1);
  books->client = g_steal_pointer (&client);
  books->timeout_ms = options->timeout_ms;
  books->max_in_flight = options->max_connections + options->max_waiting;
  books->requests = bs_metrics_counter (
      metrics, "books_requests_total",
      "Calls to the Books service by outcome (rejected: refused by the open circuit; shed: "
      "refused because BOOKS_MAX_CONNECTIONS + BOOKS_MAX_WAITING calls were in flight)",
      result_label);
  books->duration = bs_metrics_histogram (metrics, "books_request_duration_seconds",
                                          "Duration of calls to the Books service", NULL,
                                          bs_metrics_latency_buckets, bs_metrics_n_latency_buckets);
  for (guint i = 0; i < N_OUTCOMES; i++)
    bs_metric_inc (books->requests, (const char *const[]){ outcomes[i].label, NULL }, 0);
  if (share_breaker_of != NULL)
    {
      /* Books is one dependency: every loop's client sees one circuit */
      books->breaker = bs_circuit_breaker_ref (share_breaker_of->breaker);
      return books;
    }
  books->breaker = bs_circuit_breaker_new (options->failure_threshold, options->cooldown_ms);
  bs_circuit_breaker_set_state_func (books->breaker, circuit_changed, books);
  books->state = bs_metrics_gauge (metrics, "books_circuit_state",
                                   "Circuit breaker to Books: 0 closed, 1 open, 2 half-open", NULL);
  books->opens = bs_metrics_counter (metrics, "books_circuit_opens_total",
                                     "Times the circuit breaker to Books opened", NULL);
  bs_metric_set (books->state, NULL, BS_CIRCUIT_CLOSED);
  bs_metric_inc (books->opens, NULL, 0);
  return books;
}

void
orders_books_free (OrdersBooks *books)
{
  if (books == NULL)
    return;
  g_clear_pointer (&books->health, bs_single_flight_free);
  g_clear_pointer (&books->client, bs_http_client_free);
  if (books->state != NULL) /* the breaker's owner: no more state changes to us */
    bs_circuit_breaker_set_state_func (books->breaker, NULL, NULL);
  g_clear_pointer (&books->breaker, bs_circuit_breaker_free);
  g_free (books);
}

static void
count (OrdersBooks *books, Outcome outcome)
{
  bs_metric_inc (books->requests, (const char *const[]){ outcomes[outcome].label, NULL }, 1);
}

/* A non-empty string member of Books' answer, as Books stored it. The rules
 * for client text (bs-text.h) are Books' to apply when a book is written:
 * a book stored before a rule was tightened must stay orderable, and an
 * answer refused here counts against Books in the circuit breaker. */
static gboolean
get_book_text (JsonObject *object, const char *member, char **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  const char *text;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s missing or not a string", member);
      return FALSE;
    }
  text = json_node_get_string (node);
  if (*text == '\0' || g_utf8_strlen (text, -1) > BOOK_TEXT_MAX)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s empty or longer than %d characters",
                   member, BOOK_TEXT_MAX);
      return FALSE;
    }
  *out = g_strdup (text);
  return TRUE;
}

/* A 200 body: {"title": ..., "author": ..., "price": "12.99", ...}. */
static OrdersBook *
parse_book (GBytes *body, GError **error)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (body, &len);
  g_autoptr (JsonObject) object = bs_json_parse_object (data, len, error);
  g_autoptr (OrdersBook) book = g_new0 (OrdersBook, 1);

  if (object == NULL || !get_book_text (object, "title", &book->title, error)
      || !get_book_text (object, "author", &book->author, error)
      || !bs_money_from_json (json_object_get_member (object, "price"), &book->price_cents, error))
    return NULL;
  return g_steal_pointer (&book);
}

/* Turn one answer into the book or the error, and its outcome. */
static Outcome
classify (GetCall *call, BsHttpResponse *response, const GError *transport_error,
          OrdersBook **out_book, GError **error)
{
  g_autoptr (GError) parse_error = NULL;

  if (g_error_matches (transport_error, BS_ERROR, BS_ERROR_BAD_GATEWAY))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_BAD_GATEWAY, "books service sent nonsense: %s",
                   transport_error->message);
      return OUTCOME_INVALID_RESPONSE;
    }
  if (transport_error != NULL)
    {
      gboolean timeout = g_error_matches (transport_error, BS_ERROR, BS_ERROR_TIMEOUT);
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "books service unavailable: %s",
                   transport_error->message);
      return timeout ? OUTCOME_TIMEOUT : OUTCOME_CONNECTION_ERROR;
    }
  switch (response->status)
    {
      case SOUP_STATUS_OK:
        *out_book = parse_book (response->body, &parse_error);
        if (*out_book != NULL)
          return OUTCOME_SUCCESS;
        g_set_error (error, BS_ERROR, BS_ERROR_BAD_GATEWAY,
                     "books service sent an invalid book: %s", parse_error->message);
        return OUTCOME_INVALID_RESPONSE;
      case SOUP_STATUS_NOT_FOUND:
        g_set_error (error, BS_ERROR, BS_ERROR_NOT_FOUND, "book %" G_GINT64_FORMAT " not found",
                     call->book_id);
        return OUTCOME_NOT_FOUND;
      case SOUP_STATUS_GONE:
        g_set_error (error, BS_ERROR, BS_ERROR_BOOK_NOT_ORDERABLE,
                     "book %" G_GINT64_FORMAT " was deleted and cannot be ordered", call->book_id);
        return OUTCOME_GONE;
      default:
        break;
    }
  if (response->status >= 500 && response->status <= 599)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE,
                   "books service unavailable: it answered %u", response->status);
      return OUTCOME_SERVER_ERROR;
    }
  if (response->status >= 400 && response->status <= 499)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_BAD_GATEWAY,
                   "books service refused the lookup of book %" G_GINT64_FORMAT " with %u",
                   call->book_id, response->status);
      return OUTCOME_CLIENT_ERROR;
    }
  g_set_error (error, BS_ERROR, BS_ERROR_BAD_GATEWAY, "books service answered %u",
               response->status);
  return OUTCOME_INVALID_RESPONSE;
}

static void
get_book_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GetCall *call = g_task_get_task_data (task);
  OrdersBooks *books = call->books;
  g_autoptr (GError) transport_error = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (BsHttpResponse) response
      = bs_http_client_request_finish (books->client, result, &transport_error);
  OrdersBook *book = NULL;
  Outcome outcome;

  books->in_flight--;
  if (response == NULL && g_error_matches (transport_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      bs_circuit_breaker_release (books->breaker, &call->permit);
      g_task_return_error (task, g_steal_pointer (&transport_error));
      return;
    }
  bs_metric_observe_exemplar (
      books->duration, NULL, (double) (g_get_monotonic_time () - call->started_us) / G_USEC_PER_SEC,
      call->trace_id);
  outcome = classify (call, response, transport_error, &book, &error);
  count (books, outcome);
  bs_circuit_breaker_record (books->breaker, &call->permit, !outcomes[outcome].failure);
  if (book == NULL)
    {
      call->retry_after_s = 1;
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_pointer (task, book, (GDestroyNotify) orders_book_free);
}

void
orders_books_get_book_async (OrdersBooks *books, gint64 book_id, const char *request_id,
                             const BsTrace *trace, const char *tracestate,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  GetCall *call = g_new0 (GetCall, 1);
  guint retry_after_ms = 0;
  g_autofree char *path = NULL;
  BsTrace span;
  char traceparent[BS_TRACEPARENT_LEN + 1];

  g_task_set_source_tag (task, orders_books_get_book_async);
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, call, g_free);
  call->books = books;
  call->book_id = book_id;
  if (books->in_flight >= books->max_in_flight)
    {
      count (books, OUTCOME_SHED);
      call->retry_after_s = 1;
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_UNAVAILABLE,
                               "too many calls to the books service waiting (%u)",
                               books->in_flight);
      return;
    }
  if (!bs_circuit_breaker_allow (books->breaker, &call->permit, &retry_after_ms))
    {
      count (books, OUTCOME_REJECTED);
      call->retry_after_s = (retry_after_ms + 999) / 1000;
      g_task_return_new_error (task, BS_ERROR, BS_ERROR_UNAVAILABLE,
                               "books service unavailable: circuit open, retry in %u s",
                               call->retry_after_s);
      return;
    }
  path = g_strdup_printf ("/v1/books/%" G_GINT64_FORMAT, book_id);
  if (trace != NULL)
    bs_trace_child (&span, trace);
  else
    bs_trace_start (&span, NULL);
  bs_trace_format (&span, traceparent);
  g_strlcpy (call->trace_id, span.trace_id, sizeof call->trace_id);
  bs_log_call (request_id, &span, "books", "GET", path);
  call->started_us = g_get_monotonic_time ();
  books->in_flight++;
  bs_http_client_request_async (
      books->client, "GET", path, request_id,
      (const char *const[]){ "traceparent", traceparent, tracestate != NULL ? "tracestate" : NULL,
                             tracestate, NULL },
      NULL, NULL, books->timeout_ms, cancellable, get_book_done, g_steal_pointer (&task));
}

OrdersBook *
orders_books_get_book_finish (OrdersBooks *books, GAsyncResult *result, guint *retry_after_s,
                              GError **error)
{
  GetCall *call = g_task_get_task_data (G_TASK (result));

  if (retry_after_s != NULL)
    *retry_after_s = MAX (call->retry_after_s, 1);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
health_start (gpointer user_data, GAsyncReadyCallback callback, gpointer callback_data)
{
  OrdersBooks *books = user_data;

  bs_http_client_request_async (books->client, "GET", "/health", NULL, NULL, NULL, NULL,
                                books->health_timeout_ms, NULL, callback, callback_data);
}

static gboolean
health_finish (gpointer user_data, GAsyncResult *result)
{
  OrdersBooks *books = user_data;
  g_autoptr (BsHttpResponse) response = bs_http_client_request_finish (books->client, result, NULL);

  return response != NULL && response->status == SOUP_STATUS_OK;
}

void
orders_books_check_health_async (OrdersBooks *books, guint timeout_ms, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  if (books->health == NULL)
    books->health = bs_single_flight_new (health_start, health_finish, books);
  books->health_timeout_ms = timeout_ms; /* for the check this may start */
  bs_single_flight_run_async (books->health, callback, user_data);
}

gboolean
orders_books_check_health_finish (OrdersBooks *books, GAsyncResult *result)
{
  return g_task_propagate_boolean (G_TASK (result), NULL);
}
