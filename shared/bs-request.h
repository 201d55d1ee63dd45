/* bs-request.h: one HTTP request's context, shared by handler and async work. */
#pragma once

#include "bs-trace.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _BsRequest BsRequest;

/* Reference counting: the message holds one reference while it lives; async
 * work that outlives the handler takes its own. */
BsRequest *bs_request_ref (BsRequest *request);
void bs_request_unref (BsRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsRequest, bs_request_unref)

const char *bs_request_get_id (BsRequest *request);
const char *bs_request_get_method (BsRequest *request);
const char *bs_request_get_path (BsRequest *request);
/* Route template of the matched route ("/v1/books/{id}"), or NULL. */
const char *bs_request_get_route (BsRequest *request);
/* A path parameter ("id"), or NULL. */
const char *bs_request_get_param (BsRequest *request, const char *name);
/* A query parameter, or NULL. */
const char *bs_request_get_query (BsRequest *request, const char *name);
const char *bs_request_get_header (BsRequest *request, const char *name);
/* The name of the bearer token the request came with (API_TOKENS_FILE), or
 * NULL when it needed none. */
const char *bs_request_get_auth_subject (BsRequest *request);
/* The request's span (W3C Trace Context): in the trace of its valid
 * traceparent header, with that header's parent-id as parent, or the first
 * span of a new trace. Log it with the request's records. */
const BsTrace *bs_request_get_trace (BsRequest *request);
/* The tracestate to pass on with the trace, or NULL: absent, invalid, or
 * sent with no valid traceparent. */
const char *bs_request_get_tracestate (BsRequest *request);
/* Cancelled when the client goes away or the server stops. */
GCancellable *bs_request_get_cancellable (BsRequest *request);

/* Set a response header (replacing any earlier value). */
void bs_request_set_header (BsRequest *request, const char *name, const char *value);
const char *bs_request_get_response_header (BsRequest *request, const char *name);

/* Check Content-Type is JSON (415 otherwise) and parse the body as a JSON
 * object (400 when malformed). */
JsonObject *bs_request_parse_json_object (BsRequest *request, GError **error);

/* Hold the response until one of the reply functions runs. Call at most once,
 * from the handler, before starting async work. */
void bs_request_pause (BsRequest *request);

/* Replies. Each sets status and body and, when paused, unpauses. Calling a
 * reply after the client went away does nothing. Call exactly one. */
void bs_request_reply_json (BsRequest *request, guint status, JsonNode *body);
void bs_request_reply_bytes (BsRequest *request, guint status, const char *content_type,
                             GBytes *body);
/* A JSON body already written as text (bs-json-writer.h); takes @json. */
void bs_request_reply_string (BsRequest *request, guint status, GString *json);
void bs_request_reply_empty (BsRequest *request, guint status);
/* 503 errors get "Retry-After: 1" unless the handler set one. */
void bs_request_reply_error (BsRequest *request, const GError *error);
void bs_request_reply_error_literal (BsRequest *request, int code, const char *message);

/* {"error":"CODE","message":"..."} for @error. */
JsonNode *bs_error_body_new (const GError *error);

G_END_DECLS
