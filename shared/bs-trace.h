/* bs-trace.h: W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * the traceparent and tracestate headers, and the spans of one trace.
 *
 * Each request a server handles, each job a worker runs and each call to
 * another service is a span: a new span id in the trace of whoever started
 * it, with that caller's span as parent. An absent or malformed traceparent
 * starts a new trace (the spec's rule): never an error. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BS_TRACE_ID_LEN 32    /* hex digits */
#define BS_SPAN_ID_LEN 16     /* hex digits */
#define BS_TRACEPARENT_LEN 55 /* "00-" trace-id "-" parent-id "-" flags */
#define BS_TRACESTATE_MAX_LEN 512
#define BS_TRACESTATE_MAX_MEMBERS 32
#define BS_TRACE_FLAG_SAMPLED 0x01

typedef struct
{
  char trace_id[BS_TRACE_ID_LEN + 1]; /* lowercase hex, never all zeros */
  char span_id[BS_SPAN_ID_LEN + 1];   /* this span's */
  char parent_id[BS_SPAN_ID_LEN + 1]; /* the caller's span; "" when this span began the trace */
  guint8 flags;                       /* trace-flags: only the sampled bit is defined */
} BsTrace;

/* Parse a traceparent header value. Version 00 is exactly
 * "00-<32 hex>-<16 hex>-<2 hex>", lowercase, ids not all zeros; a later
 * version (not ff) is read by those first four fields, and may go on after
 * a '-'. FALSE for anything else, and for NULL. On success @trace_id and
 * @parent_id (BS_TRACE_ID_LEN + 1 and BS_SPAN_ID_LEN + 1 bytes) hold the
 * ids and *@flags the flags (the sampled bit only). */
gboolean bs_traceparent_parse (const char *value, char *trace_id, char *parent_id, guint8 *flags);
gboolean bs_traceparent_is_valid (const char *value);

/* A new span continuing the trace of @traceparent (its parent-id becomes
 * the span's parent), or, when @traceparent is NULL or malformed, the first
 * span of a new trace (sampled, no parent). TRUE when it continued one. */
gboolean bs_trace_start (BsTrace *trace, const char *traceparent);

/* A span of the same trace, with @parent's span as its parent: for a call
 * to another service, or a job started by a request. */
void bs_trace_child (BsTrace *child, const BsTrace *parent);

/* The traceparent header that makes @trace's span the parent of the
 * receiver's: "00-<trace id>-<span id>-<flags>"; @out holds
 * BS_TRACEPARENT_LEN + 1 bytes. */
void bs_trace_format (const BsTrace *trace, char *out);

/* TRUE when @value is a tracestate we pass on: at most 512 characters and
 * 32 list members, each "key=value" as the spec says (empty members
 * allowed). A tracestate that is not is dropped, never passed on. */
gboolean bs_tracestate_is_valid (const char *value);

/* For log fields: NULL when @trace is NULL or zeroed (and the parent when
 * it has none), so that the field is left out (bs_log_fields()). */
const char *bs_trace_get_trace_id (const BsTrace *trace);
const char *bs_trace_get_span_id (const BsTrace *trace);
const char *bs_trace_get_parent_id (const BsTrace *trace);

/* TRACE_ID, SPAN_ID and PARENT_SPAN_ID of @trace, as GLogField
 * initialisers; log the array with bs_log_fields(), which leaves out the
 * NULL ones. */
/* clang-format off */
#define BS_TRACE_LOG_FIELDS(trace)                                                                 \
  { "TRACE_ID", bs_trace_get_trace_id (trace), -1 },                                               \
  { "SPAN_ID", bs_trace_get_span_id (trace), -1 },                                                 \
  { "PARENT_SPAN_ID", bs_trace_get_parent_id (trace), -1 }
/* clang-format on */

G_END_DECLS
