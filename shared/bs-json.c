/* bs-json.c: request-body JSON with bounded depth and strict member types. */
#include "bs-json.h"

#include "bs-error.h"

#include <string.h>

/* Scan brackets outside strings; json-glib would recurse once per level. */
static gboolean
depth_within_limit (const char *data, gsize len)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = data[i];
      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > BS_JSON_MAX_DEPTH)
            return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

JsonObject *
bs_json_parse_object (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) parse_error = NULL;
  JsonNode *root;

  if (data == NULL || len == 0)
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                           "request body is empty; expected a JSON object");
      return NULL;
    }
  if (!g_utf8_validate_len (data, len, NULL))
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                           "request body is not valid UTF-8");
      return NULL;
    }
  if (!depth_within_limit (data, len))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_MALFORMED_JSON,
                   "request body nests deeper than %d levels", BS_JSON_MAX_DEPTH);
      return NULL;
    }

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize) len, &parse_error))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_MALFORMED_JSON, "malformed JSON: %s",
                   parse_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, BS_ERROR, BS_ERROR_VALIDATION,
                           "request body must be a JSON object");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

gboolean
bs_json_check_members (JsonObject *object, const char *const *allowed, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    {
      if (!g_strv_contains (allowed, l->data))
        {
          g_autofree char *list = g_strjoinv (", ", (char **) allowed);
          g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                       "unknown field \"%s\"; allowed fields are: %s", (const char *) l->data,
                       list);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
bs_json_get_string (JsonObject *object, const char *member, gboolean allow_blank, guint max_chars,
                    char **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  g_autofree char *value = NULL;

  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be a string", member);
      return FALSE;
    }
  value = g_strstrip (g_strdup (json_node_get_string (node)));
  if (!allow_blank && *value == '\0')
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must not be blank", member);
      return FALSE;
    }
  if (g_utf8_strlen (value, -1) > (glong) max_chars)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be at most %u characters", member,
                   max_chars);
      return FALSE;
    }
  *out = g_steal_pointer (&value);
  return TRUE;
}

gboolean
bs_json_get_int (JsonObject *object, const char *member, gint64 min, gint64 max, gboolean *present,
                 gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  gint64 value;

  *present = node != NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION, "%s must be an integer", member);
      return FALSE;
    }
  value = json_node_get_int (node);
  if (value < min || value > max)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                   "%s must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT, member, min,
                   max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

char *
bs_json_to_string (JsonNode *node, gsize *length)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();

  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, length);
}
