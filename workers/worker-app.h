/* worker-app.h: the worker daemon: configuration, Redis connections, the
 * three queues, the service (/metrics, /livez, /health), lifecycle. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _WorkerApp WorkerApp;

/* Reads the environment; BS_ERROR_CONFIG names the variable at fault. */
WorkerApp *worker_app_new (GError **error);
void worker_app_free (WorkerApp *app);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WorkerApp, worker_app_free)

/* Listen, then connect to Redis and start the queues in the background. */
gboolean worker_app_start (WorkerApp *app, GError **error);

/* Run until SIGTERM/SIGINT and drained; the exit status. */
int worker_app_run (WorkerApp *app);

G_END_DECLS
