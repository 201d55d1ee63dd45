/* worker-token.h: the worker's own bearer token for the Orders API
 * (ORDERS_API_TOKEN_FILE, or the credential orders-api-token): the file
 * holds the token itself. Read at the start, re-read on reload. */
#pragma once

#include "bs-service.h"

#include <glib.h>

G_BEGIN_DECLS

#define WORKER_TOKEN_VARIABLE "ORDERS_API_TOKEN_FILE"
#define WORKER_TOKEN_CREDENTIAL "orders-api-token"

typedef struct _WorkerToken WorkerToken;

/* NULL without an error when neither is configured (calls go without a
 * token); BS_ERROR_CONFIG for a file that is missing or not one token. */
WorkerToken *worker_token_new_from_environment (GError **error);
void worker_token_free (WorkerToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WorkerToken, worker_token_free)

/* "Bearer <token>", for the Authorization header; valid until the next
 * reload. For the main loop only. */
const char *worker_token_get_authorization (WorkerToken *token);

/* A BsServiceReloadFunc (@user_data: the WorkerToken): re-read the file
 * without blocking; a bad file keeps the token in use. */
void worker_token_reload (BsService *service, gpointer user_data);

G_END_DECLS
