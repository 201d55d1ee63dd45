/* bs-json-writer.c: a small streaming JSON writer over a GString. */
#include "bs-json-writer.h"

#include "bs-money.h"

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
append_escaped (GString *out, const char *text)
{
  g_autofree char *valid = NULL;

  if (!g_utf8_validate (text, -1, NULL))
    text = valid = g_utf8_make_valid (text, -1);
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

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
          default:
            if (c < 0x20)
              g_string_append_printf (out, "\\u%04x", c);
            else
              g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
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
  append_escaped (writer->out, name);
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
  append_escaped (writer->out, value);
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
