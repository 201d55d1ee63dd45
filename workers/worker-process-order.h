/* worker-process-order.h: queue process-order on bookstore:orders:events:
 * run the (simulated) steps of a new order and publish its status. */
#pragma once

#include "worker-config.h"
#include "worker-queue.h"

G_BEGIN_DECLS

typedef struct _WorkerProcessOrder WorkerProcessOrder;

/* @commands outlives it. */
WorkerProcessOrder *worker_process_order_new (BsRedis *commands, const WorkerConfig *config);
void worker_process_order_free (WorkerProcessOrder *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WorkerProcessOrder, worker_process_order_free)

/* The WorkerJobHandler; @user_data is the WorkerProcessOrder. */
void worker_process_order_handle (WorkerJob *job, gpointer user_data);

G_END_DECLS
