/* bs-request.c: request accessors and the reply functions that unpause once. */
#include "bs-request-private.h"

#include "bs-error.h"
#include "bs-json.h"
#include "bs-log.h"

#include <string.h>

BsRequest *
bs_request_new (SoupServerMessage *msg)
{
  BsRequest *request = g_new0 (BsRequest, 1);

  request->ref_count = 1;
  request->msg = msg;
  request->state = BS_REQUEST_READING;
  request->cancellable = g_cancellable_new ();
  return request;
}

BsRequest *
bs_request_ref (BsRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  g_atomic_int_inc (&request->ref_count);
  return request;
}

void
bs_request_unref (BsRequest *request)
{
  if (request == NULL || !g_atomic_int_dec_and_test (&request->ref_count))
    return;
  g_free (request->request_id);
  g_free (request->auth_subject);
  g_clear_object (&request->client_address);
  g_free (request->client_text);
  g_free (request->tracestate);
  g_clear_pointer (&request->params, g_hash_table_unref);
  g_clear_pointer (&request->query, g_hash_table_unref);
  g_clear_object (&request->cancellable);
  g_free (request);
}

const char *
bs_request_get_id (BsRequest *request)
{
  return request->request_id;
}

const char *
bs_request_get_method (BsRequest *request)
{
  return soup_server_message_get_method (request->msg);
}

const char *
bs_request_get_path (BsRequest *request)
{
  return g_uri_get_path (soup_server_message_get_uri (request->msg));
}

const char *
bs_request_get_route (BsRequest *request)
{
  return request->route_template;
}

const char *
bs_request_get_param (BsRequest *request, const char *name)
{
  return request->params != NULL ? g_hash_table_lookup (request->params, name) : NULL;
}

const char *
bs_request_get_query (BsRequest *request, const char *name)
{
  return request->query != NULL ? g_hash_table_lookup (request->query, name) : NULL;
}

const char *
bs_request_get_header (BsRequest *request, const char *name)
{
  return soup_message_headers_get_one (soup_server_message_get_request_headers (request->msg),
                                       name);
}

const char *
bs_request_get_auth_subject (BsRequest *request)
{
  return request->auth_subject;
}

void
bs_request_start_trace (BsRequest *request, SoupMessageHeaders *headers)
{
  /* several headers come joined by commas: a traceparent is then invalid */
  const char *traceparent = soup_message_headers_get_list (headers, "traceparent");
  const char *tracestate;

  g_clear_pointer (&request->tracestate, g_free);
  if (!bs_trace_start (&request->trace, traceparent))
    return; /* no valid traceparent: tracestate is ignored too */
  tracestate = soup_message_headers_get_list (headers, "tracestate");
  if (bs_tracestate_is_valid (tracestate))
    request->tracestate = g_strdup (tracestate);
}

const BsTrace *
bs_request_get_trace (BsRequest *request)
{
  return &request->trace;
}

const char *
bs_request_get_tracestate (BsRequest *request)
{
  return request->tracestate;
}

GCancellable *
bs_request_get_cancellable (BsRequest *request)
{
  return request->cancellable;
}

void
bs_request_set_header (BsRequest *request, const char *name, const char *value)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (request->msg), name,
                                value);
}

const char *
bs_request_get_response_header (BsRequest *request, const char *name)
{
  return soup_message_headers_get_one (soup_server_message_get_response_headers (request->msg),
                                       name);
}

/* One parameter value at *@p (a token, or a quoted-string with \\ escapes),
 * into @value; *@p moves past it. FALSE for an unterminated quoted-string. */
static gboolean
read_parameter_value (const char **p, GString *value)
{
  if (**p != '"')
    {
      for (; **p != '\0' && **p != ';' && **p != ' ' && **p != '\t'; (*p)++)
        g_string_append_c (value, **p);
      return TRUE;
    }
  for ((*p)++; **p != '"'; (*p)++)
    {
      if (**p == '\\' && (*p)[1] != '\0')
        (*p)++;
      else if (**p == '\0')
        return FALSE;
      g_string_append_c (value, **p);
    }
  (*p)++;
  return TRUE;
}

/* application/json or application/<anything>+json; a charset parameter,
 * if any (each, if several), must be utf-8 in any case, plain or quoted:
 * the body is read as UTF-8, so "charset=utf-16" is 415, not misread. */
static gboolean
content_type_is_json (const char *content_type)
{
  g_autofree char *media = NULL;
  const char *semicolon;
  const char *p;

  if (content_type == NULL)
    return FALSE;
  semicolon = strchr (content_type, ';');
  media = g_ascii_strdown (content_type, semicolon != NULL ? semicolon - content_type : -1);
  g_strstrip (media);
  if (!g_str_equal (media, "application/json")
      && !(g_str_has_prefix (media, "application/") && g_str_has_suffix (media, "+json")))
    return FALSE;
  for (p = semicolon; p != NULL && *p == ';';)
    {
      g_autoptr (GString) name = g_string_new (NULL);
      g_autoptr (GString) value = g_string_new (NULL);

      for (p++; *p == ' ' || *p == '\t'; p++)
        ;
      for (; *p != '\0' && *p != '=' && *p != ';' && *p != ' ' && *p != '\t'; p++)
        g_string_append_c (name, *p);
      for (; *p == ' ' || *p == '\t'; p++)
        ;
      if (*p == '=')
        for (p++; *p == ' ' || *p == '\t'; p++)
          ;
      if (!read_parameter_value (&p, value))
        return FALSE;
      if (g_ascii_strcasecmp (name->str, "charset") == 0
          && g_ascii_strcasecmp (value->str, "utf-8") != 0)
        return FALSE;
      for (; *p == ' ' || *p == '\t'; p++)
        ;
      if (*p != ';' && *p != '\0')
        return FALSE; /* junk after a parameter */
    }
  return TRUE;
}

JsonObject *
bs_request_parse_json_object (BsRequest *request, GError **error)
{
  SoupMessageBody *body = soup_server_message_get_request_body (request->msg);
  g_autoptr (GBytes) bytes = NULL;
  gsize len = 0;
  const char *data;

  if (!content_type_is_json (bs_request_get_header (request, "Content-Type")))
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_UNSUPPORTED_MEDIA_TYPE,
                           "Content-Type must be application/json");
      return NULL;
    }
  bytes = soup_message_body_flatten (body);
  data = g_bytes_get_data (bytes, &len);
  return bs_json_parse_object (data, len, error);
}

void
bs_request_pause (BsRequest *request)
{
  g_return_if_fail (!request->paused && !request->replied);
  g_object_ref (request->msg);
  soup_server_message_pause (request->msg);
  request->paused = TRUE;
}

/* Every reply ends here: unpause exactly once and drop the pause reference. */
static gboolean
reply_begin (BsRequest *request)
{
  if (request->replied)
    {
      g_warning ("request %s replied twice", request->request_id);
      return FALSE;
    }
  request->replied = TRUE;
  return TRUE;
}

static void
reply_end (BsRequest *request)
{
  if (request->paused)
    {
      SoupServerMessage *msg = request->msg;
      request->paused = FALSE;
      soup_server_message_unpause (msg);
      g_object_unref (msg);
    }
}

void
bs_request_reply_bytes (BsRequest *request, guint status, const char *content_type, GBytes *body)
{
  SoupMessageBody *response;

  if (!reply_begin (request))
    return;
  soup_server_message_set_status (request->msg, status, NULL);
  /* the body shares @body (immutable) instead of copying it: a megabyte
   * asset (/docs/assets/) costs a reference, not a copy per request */
  soup_message_headers_replace (soup_server_message_get_response_headers (request->msg),
                                "Content-Type", content_type);
  response = soup_server_message_get_response_body (request->msg);
  soup_message_body_truncate (response);
  soup_message_body_append_bytes (response, body);
  reply_end (request);
}

void
bs_request_reply_string (BsRequest *request, guint status, GString *json)
{
  gsize len = json->len;

  if (!reply_begin (request))
    {
      g_string_free (json, TRUE);
      return;
    }
  soup_server_message_set_status (request->msg, status, NULL);
  soup_server_message_set_response (request->msg, "application/json", SOUP_MEMORY_TAKE,
                                    g_string_free (json, FALSE), len);
  reply_end (request);
}

void
bs_request_reply_json (BsRequest *request, guint status, JsonNode *body)
{
  gsize len = 0;
  g_autofree char *text = bs_json_to_string (body, &len);
  g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&text), len);

  bs_request_reply_bytes (request, status, "application/json", bytes);
}

void
bs_request_reply_empty (BsRequest *request, guint status)
{
  if (!reply_begin (request))
    return;
  soup_server_message_set_status (request->msg, status, NULL);
  reply_end (request);
}

JsonNode *
bs_error_body_new (const GError *error)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, bs_error_code_name (error));
  json_builder_set_member_name (builder, "message");
  /* messages may quote what a client sent: never let that make the body
   * invalid UTF-8 */
  if (g_utf8_validate (error->message, -1, NULL))
    json_builder_add_string_value (builder, error->message);
  else
    {
      g_autofree char *valid = g_utf8_make_valid (error->message, -1);
      json_builder_add_string_value (builder, valid);
    }
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

void
bs_request_reply_error (BsRequest *request, const GError *error)
{
  g_autoptr (JsonNode) body = bs_error_body_new (error);
  guint status = bs_error_http_status (error);

  if (status >= 500)
    bs_log_request (G_LOG_LEVEL_WARNING, request->request_id, &request->trace, "%s %s failed: %s",
                    bs_request_get_method (request), bs_request_get_path (request), error->message);
  if (status == 503 && bs_request_get_response_header (request, "Retry-After") == NULL)
    bs_request_set_header (request, "Retry-After", "1");
  bs_request_reply_json (request, status, body);
}

void
bs_request_reply_error_literal (BsRequest *request, int code, const char *message)
{
  g_autoptr (GError) error = g_error_new_literal (BS_ERROR, code, message);

  bs_request_reply_error (request, error);
}
