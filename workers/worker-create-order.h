/* worker-create-order.h: queue create-order on bookstore:order-requests:
 * POST each job to the Orders API with its Idempotency-Key, retry what may
 * succeed later, record every outcome on bookstore:order-results. */
#pragma once

#include "worker-config.h"
#include "worker-queue.h"
#include "worker-token.h"

G_BEGIN_DECLS

typedef struct _WorkerCreateOrder WorkerCreateOrder;

/* @commands and @token (NULL: calls go without a token) outlive it.
 * BS_ERROR_CONFIG for a bad ORDERS_API_URL. */
WorkerCreateOrder *worker_create_order_new (BsRedis *commands, const WorkerConfig *config,
                                            WorkerToken *token, GError **error);
void worker_create_order_free (WorkerCreateOrder *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WorkerCreateOrder, worker_create_order_free)

/* The WorkerJobHandler; @user_data is the WorkerCreateOrder. */
void worker_create_order_handle (WorkerJob *job, gpointer user_data);
/* The WorkerDeadHandler: records the outcome dead-lettered. */
void worker_create_order_dead (const char *id, GHashTable *fields, guint deliveries,
                               const char *reason, WorkerDeadDone done, gpointer done_data,
                               gpointer user_data);

G_END_DECLS
