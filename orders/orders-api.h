/* orders-api.h: the HTTP handlers of the Orders service. */
#pragma once

#include "orders-books.h"
#include "orders-relay.h"
#include "orders-status.h"

#include "bs-db.h"
#include "bs-metrics.h"
#include "bs-migrator.h"
#include "bs-router.h"

G_BEGIN_DECLS

typedef struct
{
  BsDbPool *pool;
  BsMigrator *migrator; /* health is unhealthy until the schema is in place */
  OrdersBooks *books;
  OrdersRelay *relay;        /* kicked after each new order; Redis shown in /health */
  OrdersStatus *status;      /* Redis shown in /health */
  BsMetricFamily *created;   /* orders_created_total */
  BsMetricFamily *replays;   /* orders_idempotent_replays_total */
  BsMetricFamily *conflicts; /* orders_idempotency_conflicts_total */
} OrdersApi;

/* Create the API's own metrics in @metrics. */
void orders_api_init_metrics (OrdersApi *api, BsMetrics *metrics);

/* Add the /v1/orders routes and /health to @router. @api must outlive it. */
void orders_api_register (OrdersApi *api, BsRouter *router);

G_END_DECLS
