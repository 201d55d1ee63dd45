/* bs-json.h: parse untrusted JSON request bodies safely, read typed members. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Deepest nesting accepted; json-glib recurses, so depth is checked first. */
#define BS_JSON_MAX_DEPTH 32

/* TRUE when @data is exactly one strict RFC 8259 JSON value nested at most
 * BS_JSON_MAX_DEPTH deep, with integer literals within 64 bits, other
 * numbers kept exactly by their double (bs_decimal_is_exact_double), and no
 * \u0000 or lone surrogates; else *@problem (static text) and *@offset. */
gboolean bs_json_validate (const char *data, gsize len, const char **problem, gsize *offset);

/* Parse @data (@len bytes, not NUL-terminated) into a JSON object.
 * BS_ERROR_MALFORMED_JSON for empty, invalid UTF-8, too deep, or not JSON;
 * BS_ERROR_VALIDATION when the top level is not an object, or for a number
 * no field can hold: an integer beyond 64 bits or a number beyond a double
 * ("price: the number 1e400 is out of range"), or one whose double would
 * not give back the number written ("... has more precision than can be
 * kept exactly"). */
JsonObject *bs_json_parse_object (const char *data, gsize len, GError **error);

/* Fails unless every member of @object is named in @allowed (NULL-terminated). */
gboolean bs_json_check_members (JsonObject *object, const char *const *allowed, GError **error);

/* A string member checked by bs_text_check (bs-text.h): trimmed of Unicode
 * whitespace, no control characters but TAB, LF and CR, and with
 * @allow_blank FALSE not blank (whitespace or invisible characters only).
 * @max_chars bounds the length in characters. *@out is NULL when absent. */
gboolean bs_json_get_string (JsonObject *object, const char *member, gboolean allow_blank,
                             guint max_chars, char **out, GError **error);

/* An integer member (a JSON integer, not a string or fraction) within
 * [@min, @max]. *@present tells whether it was there. */
gboolean bs_json_get_int (JsonObject *object, const char *member, gint64 min, gint64 max,
                          gboolean *present, gint64 *out, GError **error);

/* Serialise @node compactly. */
char *bs_json_to_string (JsonNode *node, gsize *length);

G_END_DECLS
