/* bs-pagination.c: the list endpoints' paging contract, written once. */
#include "bs-pagination.h"

#include "bs-error.h"

static gboolean
all_digits (const char *text)
{
  if (text == NULL || *text == '\0')
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p))
      return FALSE;
  return TRUE;
}

static gboolean
query_int (BsRequest *request, const char *name, gint64 fallback, gint64 min, gint64 max,
           gint64 *out, GError **error)
{
  const char *text = bs_request_get_query (request, name);
  guint64 value = 0;

  if (text == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!all_digits (text)
      || !g_ascii_string_to_unsigned (text, 10, (guint64) min, (guint64) max, &value, NULL))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                   "%s must be an integer from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, name,
                   min, max);
      return FALSE;
    }
  *out = (gint64) value;
  return TRUE;
}

gboolean
bs_page_from_request (BsRequest *request, BsPage *page, GError **error)
{
  return query_int (request, "limit", BS_PAGE_DEFAULT_LIMIT, 1, BS_PAGE_MAX_LIMIT, &page->limit,
                    error)
         && query_int (request, "offset", 0, 0, BS_PAGE_MAX_OFFSET, &page->offset, error);
}

char *
bs_page_link_header (const char *path, const BsPage *page, gint64 total)
{
  g_autoptr (GPtrArray) links = g_ptr_array_new_with_free_func (g_free);

  if (page->offset + page->limit < total)
    g_ptr_array_add (links, g_strdup_printf ("<%s?limit=%" G_GINT64_FORMAT
                                             "&offset=%" G_GINT64_FORMAT ">; rel=\"next\"",
                                             path, page->limit, page->offset + page->limit));
  if (page->offset > 0)
    g_ptr_array_add (links,
                     g_strdup_printf ("<%s?limit=%" G_GINT64_FORMAT "&offset=%" G_GINT64_FORMAT
                                      ">; rel=\"prev\"",
                                      path, page->limit, MAX (page->offset - page->limit, 0)));
  if (links->len == 0)
    return NULL;
  g_ptr_array_add (links, NULL);
  return g_strjoinv (", ", (char **) links->pdata);
}

void
bs_page_set_headers (BsRequest *request, const BsPage *page, gint64 total)
{
  char count[32];
  g_autofree char *link = bs_page_link_header (bs_request_get_path (request), page, total);

  g_snprintf (count, sizeof count, "%" G_GINT64_FORMAT, total);
  bs_request_set_header (request, "X-Total-Count", count);
  if (link != NULL)
    bs_request_set_header (request, "Link", link);
}

gboolean
bs_parse_id (const char *text, const char *what, gint64 *out, GError **error)
{
  guint64 value = 0;

  if (!all_digits (text) || !g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &value, NULL))
    {
      g_set_error (error, BS_ERROR, BS_ERROR_VALIDATION,
                   "%s must be a positive integer no larger than %" G_GINT64_FORMAT, what,
                   G_MAXINT64);
      return FALSE;
    }
  *out = (gint64) value;
  return TRUE;
}

gboolean
bs_request_get_id_param (BsRequest *request, const char *name, gint64 *out, GError **error)
{
  return bs_parse_id (bs_request_get_param (request, name), name, out, error);
}
