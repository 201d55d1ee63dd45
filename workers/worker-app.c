/* worker-app.c: wire the configuration, the Redis connections and the
 * queues into a BsService. */
#include "worker-app.h"

#include "worker-config.h"
#include "worker-create-order.h"
#include "worker-metrics.h"
#include "worker-notify.h"
#include "worker-process-order.h"
#include "worker-queue.h"
#include "worker-streams.h"

#include "bs-request.h"
#include "bs-service.h"
#include "bs-stream-trimmer.h"

#define SERVICE_NAME "bookstore-worker"
#define DEFAULT_METRICS_PORT 9100
#define COMMANDS_CONNECTION "commands"

enum
{
  QUEUE_PROCESS_ORDER,
  QUEUE_SEND_NOTIFICATION,
  QUEUE_CREATE_ORDER,
  N_QUEUES,
};

struct _WorkerApp
{
  WorkerConfig config;
  BsService *service;
  WorkerMetrics metrics;
  BsRedis *commands; /* everything but the blocking reads */
  WorkerProcessOrder *process_order;
  WorkerCreateOrder *create_order;
  WorkerToken *token; /* for the Orders API, or NULL */
  WorkerQueue *queues[N_QUEUES];
  BsStreamTrimmer *trimmer; /* the streams the worker writes, on the command connection */
};

static gboolean
redis_healthy (WorkerApp *app)
{
  if (!bs_redis_is_connected (app->commands))
    return FALSE;
  if (bs_service_is_stopping (app->service))
    return TRUE; /* the readers are closed on purpose */
  for (guint i = 0; i < N_QUEUES; i++)
    if (!worker_queue_is_connected (app->queues[i]))
      return FALSE;
  return TRUE;
}

/* GET /health: 200 while Redis answers, else 503. */
static void
handle_health (BsRequest *request, gpointer user_data)
{
  WorkerApp *app = user_data;
  gboolean healthy = redis_healthy (app);
  g_autoptr (JsonNode) body = json_from_string (
      healthy ? "{\"status\":\"healthy\",\"services\":{\"redis\":\"healthy\"}}"
              : "{\"status\":\"unhealthy\",\"services\":{\"redis\":\"unhealthy\"}}",
      NULL);

  bs_request_reply_json (request, healthy ? 200 : 503, body);
}

static void
commands_state_changed (BsRedis *redis, gboolean connected, gpointer user_data)
{
  WorkerApp *app = user_data;

  worker_metrics_set_connected (&app->metrics, COMMANDS_CONNECTION, connected);
}

static void
stop_queues (BsService *service, gpointer user_data)
{
  WorkerApp *app = user_data;

  bs_stream_trimmer_stop (app->trimmer);
  for (guint i = 0; i < N_QUEUES; i++)
    worker_queue_stop (app->queues[i]);
}

static void
create_queues (WorkerApp *app)
{
  static const struct
  {
    const char *stream;
    const char *queue;
  } queues[N_QUEUES] = {
    [QUEUE_PROCESS_ORDER] = { WORKER_STREAM_ORDER_EVENTS, WORKER_QUEUE_PROCESS_ORDER },
    [QUEUE_SEND_NOTIFICATION] = { WORKER_STREAM_NOTIFICATIONS, WORKER_QUEUE_SEND_NOTIFICATION },
    [QUEUE_CREATE_ORDER] = { WORKER_STREAM_ORDER_REQUESTS, WORKER_QUEUE_CREATE_ORDER },
  };
  const WorkerJobHandler handlers[N_QUEUES] = {
    [QUEUE_PROCESS_ORDER] = worker_process_order_handle,
    [QUEUE_SEND_NOTIFICATION] = worker_notify_handle,
    [QUEUE_CREATE_ORDER] = worker_create_order_handle,
  };
  const gpointer handler_data[N_QUEUES] = {
    [QUEUE_PROCESS_ORDER] = app->process_order,
    [QUEUE_SEND_NOTIFICATION] = app->config.notify_recipient,
    [QUEUE_CREATE_ORDER] = app->create_order,
  };
  BsRedisOptions reader;

  bs_redis_options_init_default (&reader);
  bs_redis_options_set_config (&reader, &app->config.redis);
  reader.master_switches = app->metrics.master_switches;
  reader.command_timeout_ms = app->config.redis_timeout_ms;
  for (guint i = 0; i < N_QUEUES; i++)
    {
      WorkerQueueOptions options = {
        .stream = queues[i].stream,
        .queue = queues[i].queue,
        .consumer = app->config.name,
        .concurrency = app->config.concurrency,
        .block_ms = app->config.block_ms,
        .claim_idle_ms = app->config.claim_idle_ms,
        .max_deliveries = app->config.max_deliveries,
        .dead_max_entries = app->config.dead_max_entries,
        .reader = &reader,
      };

      app->queues[i] = worker_queue_new (
          &options, app->commands, app->service, &app->metrics, handlers[i],
          i == QUEUE_CREATE_ORDER ? worker_create_order_dead : NULL, handler_data[i]);
    }
}

/* What the worker writes, it keeps bounded: the streams others read until
 * their group has acknowledged (and the retention has passed), the ones
 * nobody consumes to a number of entries. bookstore:order-requests is
 * written by clients; the worker, its only reader, trims it too. */
static void
create_trimmer (WorkerApp *app)
{
  static const char *const dead_streams[] = {
    WORKER_STREAM_ORDER_EVENTS WORKER_DEAD_SUFFIX,
    WORKER_STREAM_NOTIFICATIONS WORKER_DEAD_SUFFIX,
    WORKER_STREAM_ORDER_REQUESTS WORKER_DEAD_SUFFIX,
  };

  app->trimmer = bs_stream_trimmer_new (app->commands, bs_service_get_metrics (app->service),
                                        app->config.stream_retention_ms);
  bs_stream_trimmer_add_consumed (app->trimmer, WORKER_STREAM_ORDER_STATUS, WORKER_ORDERS_GROUP);
  bs_stream_trimmer_add_consumed (app->trimmer, WORKER_STREAM_NOTIFICATIONS, WORKER_GROUP);
  bs_stream_trimmer_add_consumed (app->trimmer, WORKER_STREAM_ORDER_REQUESTS, WORKER_GROUP);
  bs_stream_trimmer_add_capped (app->trimmer, WORKER_STREAM_ORDER_RESULTS,
                                app->config.results_max_entries);
  for (guint i = 0; i < G_N_ELEMENTS (dead_streams); i++)
    bs_stream_trimmer_add_capped (app->trimmer, dead_streams[i], app->config.dead_max_entries);
}

WorkerApp *
worker_app_new (GError **error)
{
  g_autoptr (WorkerApp) app = g_new0 (WorkerApp, 1);
  g_autoptr (GError) token_error = NULL;
  BsRedisOptions options;

  if (!worker_config_load (&app->config, error))
    return NULL;
  app->service
      = bs_service_new_full (SERVICE_NAME, "WORKER_METRICS_PORT", DEFAULT_METRICS_PORT, error);
  if (app->service == NULL)
    return NULL;
  worker_metrics_init (&app->metrics, bs_service_get_metrics (app->service));

  bs_redis_options_init_default (&options);
  bs_redis_options_set_config (&options, &app->config.redis);
  options.master_switches = app->metrics.master_switches;
  options.name = COMMANDS_CONNECTION;
  options.command_timeout_ms = app->config.redis_timeout_ms;
  app->commands = bs_redis_new (&options);
  bs_redis_set_state_func (app->commands, commands_state_changed, app);
  worker_metrics_set_connected (&app->metrics, COMMANDS_CONNECTION, FALSE);

  app->token = worker_token_new_from_environment (&token_error);
  if (token_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&token_error));
      return NULL;
    }
  if (app->token != NULL)
    bs_service_add_reload_func (app->service, worker_token_reload, app->token);
  app->create_order = worker_create_order_new (app->commands, &app->config, app->token, error);
  if (app->create_order == NULL)
    return NULL;
  app->process_order = worker_process_order_new (app->commands, &app->config);
  create_queues (app);
  create_trimmer (app);

  bs_router_add (bs_service_get_router (app->service), "GET", "/health", handle_health, app);
  bs_service_add_stop_func (app->service, stop_queues, app);
  return g_steal_pointer (&app);
}

void
worker_app_free (WorkerApp *app)
{
  if (app == NULL)
    return;
  /* the queues first (jobs still running are cancelled), then the command
   * connection (its callbacks run now, into handlers that still exist),
   * then the handlers, then the service whose metrics they used */
  for (guint i = 0; i < N_QUEUES; i++)
    g_clear_pointer (&app->queues[i], worker_queue_free);
  g_clear_pointer (&app->trimmer, bs_stream_trimmer_free);
  g_clear_pointer (&app->commands, bs_redis_free);
  g_clear_pointer (&app->create_order, worker_create_order_free);
  g_clear_pointer (&app->token, worker_token_free);
  g_clear_pointer (&app->process_order, worker_process_order_free);
  g_clear_pointer (&app->service, bs_service_free);
  worker_config_clear (&app->config);
  g_free (app);
}

gboolean
worker_app_start (WorkerApp *app, GError **error)
{
  if (!bs_service_listen (app->service, error))
    return FALSE;
  g_message ("consumer %s in group %s, %u jobs at most per queue", app->config.name, WORKER_GROUP,
             app->config.concurrency);
  if (app->config.redis.env_password_ignored)
    g_warning ("REDIS_PASSWORD ignored: the Redis password comes from %s",
               app->config.redis.password_source);
  bs_redis_start (app->commands);
  for (guint i = 0; i < N_QUEUES; i++)
    worker_queue_start (app->queues[i]);
  bs_stream_trimmer_start (app->trimmer);
  return TRUE;
}

int
worker_app_run (WorkerApp *app)
{
  return bs_service_run (app->service);
}
