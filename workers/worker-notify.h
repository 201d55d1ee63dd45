/* worker-notify.h: queue send-notification on bookstore:notifications: one
 * structured journal entry per notification. */
#pragma once

#include "worker-queue.h"

G_BEGIN_DECLS

/* The WorkerJobHandler; @user_data is the default recipient (a string that
 * outlives the queue). */
void worker_notify_handle (WorkerJob *job, gpointer user_data);

G_END_DECLS
