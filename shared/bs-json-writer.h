/* bs-json-writer.h: write JSON text directly, for replies whose numbers must
 * keep an exact decimal form (money as 12.99, 0.30) that JsonGenerator,
 * going through double, cannot produce. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BsJsonWriter BsJsonWriter;

BsJsonWriter *bs_json_writer_new (void);
void bs_json_writer_free (BsJsonWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsJsonWriter, bs_json_writer_free)

void bs_json_writer_begin_object (BsJsonWriter *writer);
void bs_json_writer_end_object (BsJsonWriter *writer);
void bs_json_writer_begin_array (BsJsonWriter *writer);
void bs_json_writer_end_array (BsJsonWriter *writer);

/* Inside an object: the name of the next value. */
void bs_json_writer_member (BsJsonWriter *writer, const char *name);

/* Values. A NULL string is written as null; invalid UTF-8 is replaced. */
void bs_json_writer_string (BsJsonWriter *writer, const char *value);
void bs_json_writer_int (BsJsonWriter *writer, gint64 value);
void bs_json_writer_boolean (BsJsonWriter *writer, gboolean value);
void bs_json_writer_null (BsJsonWriter *writer);
/* A number with exactly two decimals: 1299 → 12.99, 30 → 0.30. */
void bs_json_writer_money (BsJsonWriter *writer, gint64 cents);

/* Append @value (@length bytes, or up to NUL when -1) as a JSON string
 * literal: invalid UTF-8 repaired, every control character and DEL escaped. */
void bs_json_append_string (GString *out, const char *value, gssize length);
/* The same, escaped exactly as json-glib's generator does (BS and FF as \b
 * and \f rather than \u0008 and \u000c), for replies that used to be
 * built with it and must keep their bytes. */
void bs_json_append_string_glib (GString *out, const char *value, gssize length);

/* The text written so far; the writer is consumed. */
GBytes *bs_json_writer_free_to_bytes (BsJsonWriter *writer);

G_END_DECLS
