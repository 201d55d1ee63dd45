/* bs-json-writer.c: a small streaming JSON writer over a GString. */
#include "bs-json-writer.h"

#include "bs-money.h"

#include <string.h>

struct _BsJsonWriter
{
  GString *out;
  gboolean need_comma; /* a value was written at this level: the next needs ',' */
};

BsJsonWriter *
bs_json_writer_new (void)
{
  BsJsonWriter *writer = g_new0 (BsJsonWriter, 1);

  writer->out = g_string_sized_new (256);
  return writer;
}

void
bs_json_writer_free (BsJsonWriter *writer)
{
  if (writer == NULL)
    return;
  g_string_free (writer->out, TRUE);
  g_free (writer);
}

GBytes *
bs_json_writer_free_to_bytes (BsJsonWriter *writer)
{
  GBytes *bytes = g_string_free_to_bytes (writer->out);

  g_free (writer);
  return bytes;
}

/* Before any value or member name. */
static void
separate (BsJsonWriter *writer)
{
  if (writer->need_comma)
    g_string_append_c (writer->out, ',');
}

static void
append_string (GString *out, const char *value, gssize length, gboolean short_bs_ff)
{
  g_autofree char *repaired = NULL;
  gsize len = length < 0 ? strlen (value) : (gsize) length;

  if (!g_utf8_validate_len (value, len, NULL))
    {
      repaired = g_utf8_make_valid (value, (gssize) len);
      value = repaired;
      len = strlen (repaired);
    }
  g_string_append_c (out, '"');
  for (gsize i = 0; i < len; i++)
    {
      unsigned char c = (unsigned char) value[i];
      switch (c)
        {
          case '"':
            g_string_append (out, "\\\"");
            break;
          case '\\':
            g_string_append (out, "\\\\");
            break;
          case '\n':
            g_string_append (out, "\\n");
            break;
          case '\r':
            g_string_append (out, "\\r");
            break;
          case '\t':
            g_string_append (out, "\\t");
            break;
          case '\b':
            g_string_append (out, short_bs_ff ? "\\b" : "\\u0008");
            break;
          case '\f':
            g_string_append (out, short_bs_ff ? "\\f" : "\\u000c");
            break;
          default:
            if (c < 0x20 || c == 0x7f)
              g_string_append_printf (out, "\\u%04x", c);
            else
              g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

void
bs_json_append_string (GString *out, const char *value, gssize length)
{
  append_string (out, value, length, FALSE);
}

void
bs_json_append_string_glib (GString *out, const char *value, gssize length)
{
  append_string (out, value, length, TRUE);
}

static void
begin (BsJsonWriter *writer, char bracket)
{
  separate (writer);
  g_string_append_c (writer->out, bracket);
  writer->need_comma = FALSE;
}

static void
end (BsJsonWriter *writer, char bracket)
{
  g_string_append_c (writer->out, bracket);
  writer->need_comma = TRUE;
}

void
bs_json_writer_begin_object (BsJsonWriter *writer)
{
  begin (writer, '{');
}

void
bs_json_writer_end_object (BsJsonWriter *writer)
{
  end (writer, '}');
}

void
bs_json_writer_begin_array (BsJsonWriter *writer)
{
  begin (writer, '[');
}

void
bs_json_writer_end_array (BsJsonWriter *writer)
{
  end (writer, ']');
}

void
bs_json_writer_member (BsJsonWriter *writer, const char *name)
{
  separate (writer);
  bs_json_append_string (writer->out, name, -1);
  g_string_append_c (writer->out, ':');
  writer->need_comma = FALSE;
}

/* A scalar written as @literal (already valid JSON). */
static void
literal (BsJsonWriter *writer, const char *text)
{
  separate (writer);
  g_string_append (writer->out, text);
  writer->need_comma = TRUE;
}

void
bs_json_writer_string (BsJsonWriter *writer, const char *value)
{
  if (value == NULL)
    {
      bs_json_writer_null (writer);
      return;
    }
  separate (writer);
  bs_json_append_string (writer->out, value, -1);
  writer->need_comma = TRUE;
}

void
bs_json_writer_int (BsJsonWriter *writer, gint64 value)
{
  char buf[32];

  g_snprintf (buf, sizeof buf, "%" G_GINT64_FORMAT, value);
  literal (writer, buf);
}

void
bs_json_writer_boolean (BsJsonWriter *writer, gboolean value)
{
  literal (writer, value ? "true" : "false");
}

void
bs_json_writer_null (BsJsonWriter *writer)
{
  literal (writer, "null");
}

void
bs_json_writer_money (BsJsonWriter *writer, gint64 cents)
{
  g_autofree char *text = bs_money_format (cents);

  literal (writer, text);
}
