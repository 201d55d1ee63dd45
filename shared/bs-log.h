/* bs-log.h: structured logging to journald, or JSON lines on stderr. */
#pragma once

#include "bs-trace.h"

#include <glib.h>

G_BEGIN_DECLS

/* Install the log writer. Journald when stderr is connected to the journal,
 * JSON lines on stderr otherwise. Call once from main(). */
void bs_log_init (void);

/* The writer itself, exposed for tests. */
GLogWriterOutput bs_log_writer (GLogLevelFlags log_level, const GLogField *fields, gsize n_fields,
                                gpointer user_data);

/* Render one record as a single JSON line (no trailing newline). */
char *bs_log_format_json (GLogLevelFlags log_level, const GLogField *fields, gsize n_fields);

/* g_log_structured_array() of the fields whose value is not NULL (an
 * optional field such as PARENT_SPAN_ID is left out, not written empty);
 * reorders @fields. MESSAGE, if any, must be the last. */
void bs_log_fields (GLogLevelFlags level, GLogField *fields, gsize n_fields);

/* The syslog PRIORITY field's value for a GLib level ("4" for a warning). */
const char *bs_log_priority (GLogLevelFlags level);

/* A message tied to a request: adds REQUEST_ID, the span (@trace: TRACE_ID,
 * SPAN_ID, PARENT_SPAN_ID; may be NULL) and the code location. */
void bs_log_request_full (const char *log_domain, GLogLevelFlags level, const char *request_id,
                          const BsTrace *trace, const char *file, const char *line,
                          const char *func, const char *format, ...) G_GNUC_PRINTF (8, 9);

#define bs_log_request(level, request_id, trace, ...)                                              \
  bs_log_request_full (G_LOG_DOMAIN, level, request_id, trace, __FILE__, G_STRINGIFY (__LINE__),   \
                       G_STRFUNC, __VA_ARGS__)

/* Which requests get an access record (ACCESS_LOG): every one, those
 * answered 4xx or 5xx, or none. Set once at startup, before any loop runs. */
typedef enum
{
  BS_ACCESS_LOG_ALL,
  BS_ACCESS_LOG_ERRORS,
  BS_ACCESS_LOG_OFF,
} BsAccessLog;

/* @max_per_s: at most this many records of successful requests (status
 * below 400) per second, 0 for no limit; beyond it they are counted, not
 * written, and one record says how many were left out. Errors always go out. */
void bs_log_set_access (BsAccessLog mode, guint max_per_s);
/* Under journald's default rate limit (10,000 records in 30 s per unit, past
 * which it drops them anyway) with room for the other messages. */
#define BS_ACCESS_LOG_DEFAULT_MAX_PER_S 250
/* "all", "errors" or "off"; FALSE for anything else. */
gboolean bs_access_log_from_string (const char *text, BsAccessLog *mode);

/* One access record per HTTP request (as ACCESS_LOG says). @trace: the
 * request's span, or NULL. @auth_subject: the name of the bearer token that
 * admitted it (AUTH_SUBJECT=), or NULL. @client: the client's address
 * (CLIENT_ADDRESS=), or NULL. */
void bs_log_access_full (const char *log_domain, GLogLevelFlags level, const char *request_id,
                         const BsTrace *trace, const char *method, const char *path, guint status,
                         double duration_ms, const char *auth_subject, const char *client);

#define bs_log_access(level, request_id, trace, method, path, status, duration_ms, auth_subject,   \
                      client)                                                                      \
  bs_log_access_full (G_LOG_DOMAIN, level, request_id, trace, method, path, status, duration_ms,   \
                      auth_subject, client)

/* A call to another service starts (@trace: the call's span, a child of
 * the caller's): "calling UPSTREAM: METHOD PATH" with UPSTREAM,
 * UPSTREAM_METHOD and UPSTREAM_PATH, written before the call so that the
 * journal shows the caller before the callee. Like the access record of a
 * successful request: only with ACCESS_LOG=all, within its budget. */
void bs_log_call_full (const char *log_domain, const char *request_id, const BsTrace *trace,
                       const char *upstream, const char *method, const char *path);

#define bs_log_call(request_id, trace, upstream, method, path)                                     \
  bs_log_call_full (G_LOG_DOMAIN, request_id, trace, upstream, method, path)

G_END_DECLS
