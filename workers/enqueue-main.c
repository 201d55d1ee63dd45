/* enqueue-main.c: bookstore-enqueue — add an order-creation job to
 * bookstore:order-requests and, with --wait, wait for its result.
 *
 * A command-line tool, not a daemon: synchronous hiredis is fine here. */
#include "worker-streams.h"

#include "bs-build-config.h"
#include "bs-config.h"
#include "bs-idempotency-key.h"
#include "bs-json-writer.h"
#include "bs-redis-blocking.h"
#include "bs-redis.h"
#include "bs-trace.h"

#include <hiredis/hiredis.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_REJECTED 1
#define EXIT_TIMEOUT 2
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define CONNECT_TIMEOUT_S 5
#define IO_SLACK_S 5
#define READ_BATCH "100"

static const char description[]
    = "Adds {book_id, quantity, idempotency_key} to the Redis stream bookstore:order-requests,\n"
      "where bookstore-worker creates the order through the Orders API, and prints\n"
      "{\"job_id\": ..., \"idempotency_key\": ...} as one JSON line. Without\n"
      "--idempotency-key a random one is made. With --wait, waits for the outcome on\n"
      "bookstore:order-results and prints it as a second JSON line.\n"
      "\n"
      "Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_USERNAME (the ACL\n"
      "user, bookstore-enqueue where bookstore-setup-redis made it) and REDIS_PASSWORD_FILE\n"
      "(a file holding the password; or the credential redis-password in\n"
      "$CREDENTIALS_DIRECTORY). REDIS_PASSWORD still works but shows the password to\n"
      "every process of the same user: prefer the file. Through Sentinel:\n"
      "REDIS_SENTINELS (host:port,...) and REDIS_MASTER_NAME instead of REDIS_HOST and\n"
      "REDIS_PORT; the sentinels are asked in turn where the master is.\n"
      "\n"
      "Exit status: 0 job added (with --wait: order created or replayed); 1 rejected or\n"
      "dead-lettered; 2 no result within --wait seconds; 64 usage error; 69 Redis\n"
      "unreachable or failing; 78 bad environment.\n";

typedef struct
{
  gint64 book_id;
  gint64 quantity;
  char *key;
  char *request_id;
  char *traceparent;
  gint wait_s;
} Options;

static int
usage_error (const char *message)
{
  fprintf (stderr, "bookstore-enqueue: %s (see --help)\n", message);
  return EXIT_USAGE;
}

static int
parse_options (int *argc, char ***argv, Options *options)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- queue an order-creation job");
  g_autoptr (GError) error = NULL;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "book-id", 0, 0, G_OPTION_ARG_INT64, &options->book_id, "Book to order (required)", "ID" },
    { "quantity", 0, 0, G_OPTION_ARG_INT64, &options->quantity, "How many (required)", "N" },
    { "idempotency-key", 0, 0, G_OPTION_ARG_STRING, &options->key,
      "Idempotency-Key of the order, 1 to 255 visible ASCII characters (default: a random UUID)",
      "KEY" },
    { "request-id", 0, 0, G_OPTION_ARG_STRING, &options->request_id,
      "X-Request-ID for the call to Orders (default: a random UUID)", "ID" },
    { "traceparent", 0, 0, G_OPTION_ARG_STRING, &options->traceparent,
      "W3C traceparent of the trace the job joins (default: $TRACEPARENT when valid, else a new "
      "trace)",
      "VALUE" },
    { "wait", 0, 0, G_OPTION_ARG_INT, &options->wait_s, "Wait this long for the outcome",
      "SECONDS" },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context, description);
  if (!g_option_context_parse (context, argc, argv, &error))
    return usage_error (error->message);
  if (version)
    {
      printf ("bookstore-enqueue %s\n", BS_VERSION);
      return EXIT_SUCCESS;
    }
  if (*argc > 1)
    return usage_error ("unexpected arguments");
  if (options->book_id <= 0)
    return usage_error ("--book-id must be a positive integer");
  if (options->quantity <= 0)
    return usage_error ("--quantity must be a positive integer");
  if (!bs_idempotency_key_check (options->key, &error))
    {
      /* Orders would refuse the key, and libsoup drops a header with CR/LF */
      g_autofree char *message = g_strdup_printf ("--idempotency-key: %s", error->message);
      return usage_error (message);
    }
  if (options->wait_s < 0 || options->wait_s > 86400)
    return usage_error ("--wait must be 0 to 86400 seconds");
  if (options->traceparent != NULL && !bs_traceparent_is_valid (options->traceparent))
    return usage_error ("--traceparent must be 00-<32 hex>-<16 hex>-<2 hex>, lowercase");
  return -1;
}

/* A reply that is not an error; else prints why and returns NULL. */
static redisReply *
command (redisContext *redis, int argc, const char **argv)
{
  g_autoptr (GError) error = NULL;
  redisReply *reply = bs_redis_blocking_command (redis, argc, argv, &error);

  if (reply == NULL)
    fprintf (stderr, "bookstore-enqueue: %s\n", error->message);
  return reply;
}

static redisContext *
connect_redis (int *status)
{
  g_autoptr (GError) error = NULL;
  g_auto (BsConfigRedis) config = { 0 };
  g_autofree char *address = NULL;
  redisContext *redis;

  if (!bs_config_get_redis (&config, &error))
    {
      fprintf (stderr, "bookstore-enqueue: %s\n", error->message);
      *status = BS_EXIT_CONFIG;
      return NULL;
    }
  if (config.env_password_ignored)
    fprintf (stderr, "bookstore-enqueue: REDIS_PASSWORD ignored: the password comes from %s\n",
             config.password_source);
  *status = EXIT_UNAVAILABLE;
  redis = bs_redis_blocking_connect (&config, CONNECT_TIMEOUT_S * 1000, &address, &error);
  if (redis == NULL)
    fprintf (stderr, "bookstore-enqueue: Redis%s%s: %s\n", address != NULL ? " at " : "",
             address != NULL ? address : "", error->message);
  return redis;
}

/* The newest id of order-results ("0-0" when empty): results of our job
 * come after it. */
static char *
last_result_id (redisContext *redis)
{
  g_autoptr (redisReply) reply = command (
      redis, 6,
      (const char *[]){ "XREVRANGE", WORKER_STREAM_ORDER_RESULTS, "+", "-", "COUNT", "1" });

  if (reply == NULL)
    return NULL;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
      && reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2
      && reply->element[0]->element[0]->type == REDIS_REPLY_STRING)
    return g_strdup (reply->element[0]->element[0]->str);
  return g_strdup ("0-0");
}

static void
print_job (const char *job_id, const char *key, const char *trace_id)
{
  g_autoptr (BsJsonWriter) writer = bs_json_writer_new ();
  g_autoptr (GBytes) bytes = NULL;

  bs_json_writer_begin_object (writer);
  bs_json_writer_member (writer, "job_id");
  bs_json_writer_string (writer, job_id);
  bs_json_writer_member (writer, "idempotency_key");
  bs_json_writer_string (writer, key);
  bs_json_writer_member (writer, "trace_id");
  bs_json_writer_string (writer, trace_id);
  bs_json_writer_end_object (writer);
  bytes = bs_json_writer_free_to_bytes (g_steal_pointer (&writer));
  printf ("%.*s\n", (int) g_bytes_get_size (bytes), (const char *) g_bytes_get_data (bytes, NULL));
  fflush (stdout);
}

/* One result entry's fields [k, v, ...] as a JSON line; numbers as numbers.
 * Returns the exit status for its outcome. */
static int
print_result (const redisReply *fields)
{
  static const char *const numeric[] = { "http_status", "order_id", "attempts", NULL };
  g_autoptr (BsJsonWriter) writer = bs_json_writer_new ();
  g_autoptr (GBytes) bytes = NULL;
  const char *outcome = NULL;

  bs_json_writer_begin_object (writer);
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    {
      const char *key = fields->element[i]->str;
      const char *value = fields->element[i + 1]->str;
      gint64 number = 0;

      if (key == NULL || value == NULL)
        continue;
      if (g_str_equal (key, "outcome"))
        outcome = value;
      bs_json_writer_member (writer, key);
      if (g_strv_contains (numeric, key)
          && g_ascii_string_to_signed (value, 10, G_MININT64, G_MAXINT64, &number, NULL))
        bs_json_writer_int (writer, number);
      else
        bs_json_writer_string (writer, value);
    }
  bs_json_writer_end_object (writer);
  bytes = bs_json_writer_free_to_bytes (g_steal_pointer (&writer));
  printf ("%.*s\n", (int) g_bytes_get_size (bytes), (const char *) g_bytes_get_data (bytes, NULL));
  fflush (stdout);
  return g_strcmp0 (outcome, "created") == 0 || g_strcmp0 (outcome, "replayed") == 0
             ? EXIT_SUCCESS
             : EXIT_REJECTED;
}

/* The job_id field of entry fields [k, v, ...], or NULL. */
static const char *
job_id_of (const redisReply *fields)
{
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (g_strcmp0 (fields->element[i]->str, "job_id") == 0)
      return fields->element[i + 1]->str;
  return NULL;
}

/* XREAD BLOCK from @after until a result names @job_id or time runs out. */
static int
wait_for_result (redisContext *redis, const char *job_id, char *after, int wait_s)
{
  g_autofree char *last = after;
  gint64 deadline = g_get_monotonic_time () + (gint64) wait_s * G_USEC_PER_SEC;

  for (;;)
    {
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      g_autofree char *block = NULL;
      g_autoptr (redisReply) reply = NULL;
      struct timeval timeout = { 0 };

      if (left_ms <= 0)
        {
          fprintf (stderr, "bookstore-enqueue: no result for job %s within %d s\n", job_id, wait_s);
          return EXIT_TIMEOUT;
        }
      block = g_strdup_printf ("%" G_GINT64_FORMAT, left_ms);
      timeout.tv_sec = left_ms / 1000 + IO_SLACK_S;
      redisSetTimeout (redis, timeout);
      reply = command (redis, 8,
                       (const char *[]){ "XREAD", "COUNT", READ_BATCH, "BLOCK", block, "STREAMS",
                                         WORKER_STREAM_ORDER_RESULTS, last });
      if (reply == NULL)
        return EXIT_UNAVAILABLE;
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
        continue; /* nil: BLOCK ran out; the deadline check ends it */
      {
        const redisReply *stream = reply->element[0];
        const redisReply *entries;

        if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2
            || stream->element[1]->type != REDIS_REPLY_ARRAY)
          {
            fprintf (stderr, "bookstore-enqueue: unexpected XREAD reply\n");
            return EXIT_UNAVAILABLE;
          }
        entries = stream->element[1];
        for (size_t i = 0; i < entries->elements; i++)
          {
            const redisReply *entry = entries->element[i];

            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
                || entry->element[0]->type != REDIS_REPLY_STRING
                || entry->element[1]->type != REDIS_REPLY_ARRAY)
              continue;
            g_free (last);
            last = g_strdup (entry->element[0]->str);
            if (g_strcmp0 (job_id_of (entry->element[1]), job_id) == 0)
              return print_result (entry->element[1]);
          }
      }
    }
}

int
main (int argc, char **argv)
{
  Options options = { 0 };
  int status;
  g_autoptr (redisContext) redis = NULL;
  g_autoptr (redisReply) reply = NULL;
  g_autofree char *after = NULL;
  g_autofree char *key = NULL;
  g_autofree char *request_id = NULL;
  g_autofree char *wanted_traceparent = NULL;
  char book_id[32], quantity[32];
  const char *argv_add[13];
  int argc_add = 0;
  BsTrace trace;
  char traceparent[BS_TRACEPARENT_LEN + 1];

  setlocale (LC_ALL, "");
  status = parse_options (&argc, &argv, &options);
  key = options.key != NULL ? options.key : g_uuid_string_random ();
  request_id = options.request_id;
  wanted_traceparent = options.traceparent;
  if (status >= 0)
    return status;
  redis = connect_redis (&status);
  if (redis == NULL)
    return status;
  if (options.wait_s > 0 && (after = last_result_id (redis)) == NULL)
    return EXIT_UNAVAILABLE;

  g_snprintf (book_id, sizeof book_id, "%" G_GINT64_FORMAT, options.book_id);
  g_snprintf (quantity, sizeof quantity, "%" G_GINT64_FORMAT, options.quantity);
  for (const char *const *a
       = (const char *const[]){ "XADD", WORKER_STREAM_ORDER_REQUESTS, "*", "book_id", book_id,
                                "quantity", quantity, "idempotency_key", key, NULL };
       *a != NULL; a++)
    argv_add[argc_add++] = *a;
  if (request_id != NULL)
    {
      argv_add[argc_add++] = "request_id";
      argv_add[argc_add++] = request_id;
    }
  /* this command is the job's first span: the worker's is its child */
  bs_trace_start (&trace,
                  wanted_traceparent != NULL ? wanted_traceparent : g_getenv ("TRACEPARENT"));
  bs_trace_format (&trace, traceparent);
  argv_add[argc_add++] = "traceparent";
  argv_add[argc_add++] = traceparent;
  reply = command (redis, argc_add, argv_add);
  if (reply == NULL || reply->type != REDIS_REPLY_STRING)
    return EXIT_UNAVAILABLE;
  print_job (reply->str, key, trace.trace_id);
  if (options.wait_s == 0)
    return EXIT_SUCCESS;
  return wait_for_result (redis, reply->str, g_steal_pointer (&after), options.wait_s);
}
