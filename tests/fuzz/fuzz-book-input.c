/* fuzz-book-input.c: libFuzzer target for the request-body path of
 * POST/PUT /v1/books: bs_json_parse_object() then books_book_input_parse(). */
#include "books-book.h"

#include "bs-json.h"
#include "bs-money.h"
#include "bs-text.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gboolean
text_ok (const char *text, gboolean allow_blank)
{
  g_autofree char *trimmed = bs_text_trim (text);

  if (!g_utf8_validate (text, -1, NULL) || strcmp (trimmed, text) != 0)
    return FALSE;
  if (!allow_blank && bs_text_is_blank (text))
    return FALSE;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    if (bs_text_is_forbidden_control (g_utf8_get_char (p)))
      return FALSE;
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = bs_json_parse_object ((const char *) data, size, &error);

  if (object == NULL)
    return 0;
  for (int partial = 0; partial <= 1; partial++)
    {
      g_auto (BooksBookInput) input = { 0 };
      g_autoptr (GError) parse_error = NULL;

      if (books_book_input_parse (object, partial, &input, &parse_error))
        {
          /* what we would store must round-trip exactly */
          g_autofree char *text = NULL;
          gint64 again = -1;

          if (input.has_price)
            {
              text = bs_money_format (input.price_cents);
              if (!bs_money_parse (text, &again, NULL) || again != input.price_cents
                  || input.price_cents < 0 || input.price_cents > BS_MONEY_MAX_CENTS)
                __builtin_trap ();
            }
          if (!partial && (input.title == NULL || input.author == NULL || !input.has_price))
            __builtin_trap ();
          /* docs/validation.md: no stored text is blank or holds a forbidden control */
          if ((input.title != NULL && !text_ok (input.title, FALSE))
              || (input.author != NULL && !text_ok (input.author, FALSE))
              || (input.description != NULL && !text_ok (input.description, TRUE)))
            __builtin_trap ();
        }
      else if (parse_error == NULL)
        __builtin_trap ();
    }
  return 0;
}
