/* bs-request-private.h: what the HTTP server knows about a request. */
#pragma once

#include "bs-request.h"
#include "bs-trace.h"

G_BEGIN_DECLS

typedef enum
{
  BS_REQUEST_READING,  /* waiting for (or reading) the request: deadline applies */
  BS_REQUEST_HANDLING, /* handed to a handler */
  BS_REQUEST_DONE,     /* response finished or connection gone */
} BsRequestState;

struct _BsRequest
{
  gint ref_count;
  SoupServerMessage *msg; /* not owned; strong ref held only while paused */
  gboolean paused;
  gboolean replied;
  BsRequestState state;
  gint64 started_us; /* when the headers arrived */
  char *request_id;
  const char *route_template; /* owned by the router */
  GHashTable *params;         /* name → value */
  GHashTable *query;          /* name → value, from libsoup */
  GCancellable *cancellable;
  gsize body_bytes; /* counted for chunked bodies */
  gboolean too_large;
  gboolean wrote_body; /* the whole response went out */
  char *auth_subject;  /* the name of the bearer token that admitted it */
  BsTrace trace;       /* the request's span (bs_request_start_trace) */
  char *tracestate;    /* passed on with the trace; NULL when none */
  /* the client's address, worked out once when first needed (the peer's, or
   * the one a trusted proxy's X-Forwarded-For names), and as text */
  GInetAddress *client_address;
  char *client_text;
};

BsRequest *bs_request_new (SoupServerMessage *msg);

/* The request's span from its traceparent and tracestate headers (or a
 * new trace): when its headers have arrived. */
void bs_request_start_trace (BsRequest *request, SoupMessageHeaders *headers);

G_END_DECLS
