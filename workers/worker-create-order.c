/* worker-create-order.c: one order-creation job → POST /v1/orders.
 *
 * 201 → created (replayed when Orders answered Idempotent-Replayed: true);
 * 4xx → rejected, acknowledged, never retried; a timeout, 5xx or connection
 * error → retried here with exponential backoff up to ORDERS_HTTP_RETRIES
 * times, then the job fails and stays pending: the queue delivers it again
 * later and finally dead-letters it (outcome dead-lettered). The same
 * Idempotency-Key on every attempt and delivery makes one order at most.
 * An invalid job (book_id or quantity not a positive integer, or an
 * idempotency_key that breaks the rule of bs-idempotency-key.h) is rejected
 * without a call; a job without idempotency_key uses "job-<job id>". */
#include "worker-create-order.h"

#include "worker-streams.h"

#include "bs-build-config.h"
#include "bs-error.h"
#include "bs-http-client.h"
#include "bs-idempotency-key.h"
#include "bs-json-writer.h"
#include "bs-json.h"
#include "bs-log.h"
#include "bs-request-id.h"

#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 5000
#define ERROR_MAX_CHARS 500
#define MAX_CONNECTIONS 16

struct _WorkerCreateOrder
{
  BsRedis *commands;
  BsHttpClient *client;
  WorkerToken *token; /* not owned; NULL: no Authorization */
  guint retries;
  guint timeout_ms;
};

typedef struct
{
  WorkerCreateOrder *self;
  WorkerJob *job; /* the handler's reference, handed to its completion */
  char *key;
  char *request_id;
  BsTrace trace;    /* the job's span */
  char *tracestate; /* the job's, passed on; may be NULL */
  GBytes *body;
  guint attempts;
  /* the outcome */
  const char *outcome;
  guint http_status;
  char *order_id;
  char *error;
} Call;

static void post (Call *call);

static void
call_free (Call *call)
{
  g_warn_if_fail (call->job == NULL); /* every path hands the job to a completion */
  g_free (call->key);
  g_free (call->request_id);
  g_free (call->tracestate);
  g_clear_pointer (&call->body, g_bytes_unref);
  g_free (call->order_id);
  g_free (call->error);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_free)

WorkerCreateOrder *
worker_create_order_new (BsRedis *commands, const WorkerConfig *config, WorkerToken *token,
                         GError **error)
{
  g_autoptr (BsHttpClient) client = bs_http_client_new (
      "ORDERS_API_URL", config->orders_url, "bookstore-worker/" BS_VERSION, MAX_CONNECTIONS, error);
  WorkerCreateOrder *self;

  if (client == NULL
      || !bs_http_client_set_ca_file (client, "ORDERS_CA_FILE", config->orders_ca_file, error))
    return NULL;
  self = g_new0 (WorkerCreateOrder, 1);
  self->commands = commands;
  self->client = g_steal_pointer (&client);
  self->token = token;
  self->retries = config->http_retries;
  self->timeout_ms = config->http_timeout_ms;
  return self;
}

void
worker_create_order_free (WorkerCreateOrder *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->client, bs_http_client_free);
  g_free (self);
}

/* ---- results ----------------------------------------------------------------------- */

typedef void (*ResultDone) (const GError *error, gpointer user_data);

typedef struct
{
  ResultDone done;
  gpointer user_data;
} ResultOp;

static void
result_added (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  g_autofree ResultOp *op = user_data;

  op->done (error, op->user_data);
}

/* XADD bookstore:order-results ... (fields of docs/events.md) */
static void
publish_result (BsRedis *commands, const char *job_id, const char *key, const char *outcome,
                guint http_status, const char *order_id, const char *error, guint attempts,
                ResultDone done, gpointer user_data)
{
  ResultOp *op = g_new0 (ResultOp, 1);
  char status[16], tries[16];
  const char *argv[20];
  int argc = 0;

  g_snprintf (status, sizeof status, "%u", http_status);
  g_snprintf (tries, sizeof tries, "%u", attempts);
  for (const char *const *a
       = (const char *const[]){ "XADD", WORKER_STREAM_ORDER_RESULTS, "MAXLEN", "~",
                                WORKER_RESULTS_MAXLEN, "*", "job_id", job_id, "idempotency_key",
                                key, "outcome", outcome, "http_status", status, "attempts", tries,
                                NULL };
       *a != NULL; a++)
    argv[argc++] = *a;
  if (order_id != NULL)
    {
      argv[argc++] = "order_id";
      argv[argc++] = order_id;
    }
  if (error != NULL)
    {
      argv[argc++] = "error";
      argv[argc++] = error;
    }
  op->done = done;
  op->user_data = user_data;
  bs_redis_command_argv (commands, 0, argc, argv, NULL, result_added, op);
}

static void
final_result_added (const GError *error, gpointer user_data)
{
  g_autoptr (Call) call = user_data;
  g_autofree char *reason = NULL;

  if (error != NULL)
    {
      reason = g_strdup_printf ("recording the result: %s", error->message);
      worker_job_fail (g_steal_pointer (&call->job), worker_failure_class_for_redis (error),
                       reason);
      return;
    }
  if (g_str_equal (call->outcome, "rejected"))
    {
      reason = g_strdup_printf ("HTTP %u: %s", call->http_status, call->error);
      worker_job_reject (g_steal_pointer (&call->job),
                         call->http_status != 0 ? WORKER_FAILURE_4XX : WORKER_FAILURE_OTHER,
                         reason);
      return;
    }
  worker_job_complete (g_steal_pointer (&call->job));
}

static void
finish (Call *call, const char *outcome)
{
  call->outcome = outcome;
  bs_log_request (g_str_equal (outcome, "rejected") ? G_LOG_LEVEL_MESSAGE : G_LOG_LEVEL_INFO,
                  call->request_id, &call->trace,
                  "order-creation job %s %s (HTTP %u, order %s, attempt %u)%s%s",
                  worker_job_get_id (call->job), outcome, call->http_status,
                  call->order_id != NULL ? call->order_id : "-", call->attempts,
                  call->error != NULL ? ": " : "", call->error != NULL ? call->error : "");
  publish_result (call->self->commands, worker_job_get_id (call->job), call->key, outcome,
                  call->http_status, call->order_id, call->error, call->attempts,
                  final_result_added, call);
}

/* ---- the HTTP call and its retries -------------------------------------------------- */

static gboolean
retry_due (gpointer user_data)
{
  Call *call = user_data;

  if (g_cancellable_is_cancelled (worker_job_get_cancellable (call->job)))
    {
      worker_job_fail (g_steal_pointer (&call->job), WORKER_FAILURE_OTHER, "worker stopped");
      call_free (call);
      return G_SOURCE_REMOVE;
    }
  post (call);
  return G_SOURCE_REMOVE;
}

/* Retry after 200 ms × 2^n (at most 5 s), or Retry-After when longer and
 * not over that cap; after the last retry the job fails (redelivered later). */
static void
retry_or_fail (Call *call, WorkerFailureClass failure_class, const char *why, guint retry_after)
{
  guint delay_ms;

  if (call->attempts > call->self->retries)
    {
      g_autofree char *reason = g_strdup_printf ("%s (after %u attempts)", why, call->attempts);

      worker_job_fail (g_steal_pointer (&call->job), failure_class, reason);
      call_free (call);
      return;
    }
  delay_ms = MIN (BACKOFF_BASE_MS << MIN (call->attempts - 1, 10), BACKOFF_CAP_MS);
  if (retry_after > delay_ms && retry_after <= BACKOFF_CAP_MS)
    delay_ms = retry_after;
  bs_log_request (G_LOG_LEVEL_MESSAGE, call->request_id, &call->trace,
                  "order-creation job %s: attempt %u failed: %s; retrying in %u ms",
                  worker_job_get_id (call->job), call->attempts, why, delay_ms);
  g_timeout_add (delay_ms, retry_due, call);
}

/* "CODE: message" from an error body, or "HTTP <status>". */
static char *
error_from_body (const BsHttpResponse *response)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (response->body, &len);
  g_autoptr (JsonObject) object = bs_json_parse_object (data, len, NULL);
  g_autofree char *code = NULL, *message = NULL;
  g_autofree char *text = NULL;

  if (object != NULL)
    {
      bs_json_get_string (object, "error", TRUE, ERROR_MAX_CHARS, &code, NULL);
      bs_json_get_string (object, "message", TRUE, ERROR_MAX_CHARS, &message, NULL);
    }
  if (message == NULL)
    return g_strdup_printf ("HTTP %u", response->status);
  text = code != NULL ? g_strdup_printf ("%s: %s", code, message) : g_strdup (message);
  return g_steal_pointer (&text);
}

/* The order id of a 201 body, as a decimal string; NULL if absent. */
static char *
order_id_from_body (const BsHttpResponse *response)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (response->body, &len);
  g_autoptr (JsonObject) object = bs_json_parse_object (data, len, NULL);
  gint64 id = 0;
  gboolean present = FALSE;

  if (object == NULL || !bs_json_get_int (object, "id", 1, G_MAXINT64, &present, &id, NULL)
      || !present)
    return NULL;
  return g_strdup_printf ("%" G_GINT64_FORMAT, id);
}

static guint
retry_after_ms (const BsHttpResponse *response)
{
  const char *value = soup_message_headers_get_one (response->headers, "Retry-After");
  guint64 seconds = 0;

  if (value == NULL || !g_ascii_string_to_unsigned (value, 10, 0, 3600, &seconds, NULL))
    return 0;
  return (guint) seconds * 1000;
}

static void
posted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (BsHttpResponse) response
      = bs_http_client_request_finish (call->self->client, result, &error);
  g_autofree char *why = NULL;

  if (response == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          worker_job_fail (g_steal_pointer (&call->job), WORKER_FAILURE_OTHER, "worker stopped");
          call_free (call);
          return;
        }
      retry_or_fail (call,
                     g_error_matches (error, BS_ERROR, BS_ERROR_TIMEOUT) ? WORKER_FAILURE_TIMEOUT
                                                                         : WORKER_FAILURE_OTHER,
                     error->message, 0);
      return;
    }
  call->http_status = response->status;
  if (response->status == SOUP_STATUS_CREATED || response->status == SOUP_STATUS_OK)
    {
      const char *replayed
          = soup_message_headers_get_one (response->headers, "Idempotent-Replayed");

      call->order_id = order_id_from_body (response);
      if (call->order_id == NULL)
        {
          retry_or_fail (call, WORKER_FAILURE_OTHER, "HTTP 201 without an order id", 0);
          return;
        }
      finish (call, g_strcmp0 (replayed, "true") == 0 ? "replayed" : "created");
      return;
    }
  if (response->status >= 400 && response->status < 500)
    {
      call->error = error_from_body (response);
      finish (call, "rejected");
      return;
    }
  why = error_from_body (response);
  if (!g_str_has_prefix (why, "HTTP "))
    {
      g_autofree char *detail = g_steal_pointer (&why);
      why = g_strdup_printf ("HTTP %u %s", response->status, detail);
    }
  retry_or_fail (call, response->status >= 500 ? WORKER_FAILURE_5XX : WORKER_FAILURE_OTHER, why,
                 retry_after_ms (response));
}

/* Each attempt is a span of its own, a child of the job's. */
static void
post (Call *call)
{
  BsTrace span;
  char traceparent[BS_TRACEPARENT_LEN + 1];
  const char *headers[9] = { "Idempotency-Key", call->key, "traceparent", traceparent };
  guint n = 4;

  bs_trace_child (&span, &call->trace);
  bs_trace_format (&span, traceparent);
  if (call->tracestate != NULL)
    {
      headers[n++] = "tracestate";
      headers[n++] = call->tracestate;
    }
  if (call->self->token != NULL)
    {
      headers[n++] = "Authorization";
      headers[n++] = worker_token_get_authorization (call->self->token);
    }

  bs_log_call (call->request_id, &span, "orders", "POST", "/v1/orders");
  call->attempts++;
  bs_http_client_request_async (call->self->client, "POST", "/v1/orders", call->request_id, headers,
                                "application/json", call->body, call->self->timeout_ms,
                                worker_job_get_cancellable (call->job), posted, call);
}

/* ---- the job ------------------------------------------------------------------------ */

void
worker_create_order_handle (WorkerJob *job, gpointer user_data)
{
  g_autoptr (Call) call = g_new0 (Call, 1);
  const char *key = worker_job_get_field (job, "idempotency_key");
  const char *request_id = worker_job_get_field (job, "request_id");
  guint64 book_id = 0, quantity = 0;
  g_autoptr (GError) key_error = NULL;
  g_autoptr (BsJsonWriter) writer = bs_json_writer_new ();

  call->self = user_data;
  call->job = job;
  /* no key: the job id stands in; a key Orders would refuse, or that libsoup
   * would drop from the request (CR/LF), makes the job invalid: sending it
   * without its key could create the order twice */
  call->key = key != NULL ? g_strdup (key) : g_strconcat ("job-", worker_job_get_id (job), NULL);
  call->request_id = request_id != NULL && bs_request_id_is_sane (request_id)
                         ? g_strdup (request_id)
                         : g_uuid_string_random ();
  call->trace = *worker_job_get_trace (job);
  call->tracestate = g_strdup (worker_job_get_tracestate (job));
  /* an invalid job would fail the same way every time: no retries */
  if (!worker_job_get_positive_field (job, "book_id", &book_id)
      || !worker_job_get_positive_field (job, "quantity", &quantity))
    {
      call->error = g_strdup ("invalid job: book_id and quantity must be positive integers");
      finish (g_steal_pointer (&call), "rejected");
      return;
    }
  if (!bs_idempotency_key_check (key, &key_error))
    {
      call->error = g_strdup_printf ("invalid job: idempotency_key: %s", key_error->message);
      finish (g_steal_pointer (&call), "rejected");
      return;
    }
  bs_json_writer_begin_object (writer);
  bs_json_writer_member (writer, "book_id");
  bs_json_writer_int (writer, (gint64) book_id);
  bs_json_writer_member (writer, "quantity");
  bs_json_writer_int (writer, (gint64) quantity);
  bs_json_writer_end_object (writer);
  call->body = bs_json_writer_free_to_bytes (g_steal_pointer (&writer));
  post (g_steal_pointer (&call));
}

/* ---- dead letters ------------------------------------------------------------------- */

typedef struct
{
  WorkerDeadDone done;
  gpointer done_data;
  char *job_id;
  char *request_id; /* the job's; may be NULL */
  BsTrace trace;    /* a span in the trace of the job's traceparent field */
} DeadResult;

static void
dead_result_added (const GError *error, gpointer user_data)
{
  DeadResult *dead = user_data;

  if (error != NULL)
    bs_log_request (G_LOG_LEVEL_WARNING, dead->request_id, &dead->trace,
                    "order-creation job %s dead-lettered, but its result was not recorded: %s",
                    dead->job_id, error->message);
  dead->done (dead->done_data);
  g_free (dead->job_id);
  g_free (dead->request_id);
  g_free (dead);
}

void
worker_create_order_dead (const char *id, GHashTable *fields, guint deliveries, const char *reason,
                          WorkerDeadDone done, gpointer done_data, gpointer user_data)
{
  WorkerCreateOrder *self = user_data;
  const char *key = g_hash_table_lookup (fields, "idempotency_key");
  const char *request_id = g_hash_table_lookup (fields, "request_id");
  g_autofree char *fallback_key = g_strconcat ("job-", id, NULL);
  DeadResult *dead = g_new0 (DeadResult, 1);

  dead->done = done;
  dead->done_data = done_data;
  dead->job_id = g_strdup (id);
  if (request_id != NULL && bs_request_id_is_sane (request_id))
    dead->request_id = g_strdup (request_id);
  bs_trace_start (&dead->trace, g_hash_table_lookup (fields, "traceparent"));
  publish_result (self->commands, id, key != NULL ? key : fallback_key, "dead-lettered", 0, NULL,
                  reason, deliveries, dead_result_added, dead);
}
