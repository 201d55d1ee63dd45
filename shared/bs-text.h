/* bs-text.h: the one rule for client text (titles, authors, descriptions).
 * docs/validation.md states it for API users. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE for what is trimmed from both ends of a text: Unicode whitespace
 * (g_unichar_isspace: TAB, LF, CR, FF, and the separators Zs, Zl, Zp such as
 * NBSP and U+3000) and ASCII VT. */
gboolean bs_text_is_space (gunichar c);

/* TRUE for a character text must not hold: a C0 control other than TAB, LF
 * and CR, DEL, or a C1 control (U+0080 to U+009F, e.g. U+0085 NEL or U+009B
 * CSI, which terminals act on). */
gboolean bs_text_is_forbidden_control (gunichar c);

/* TRUE when @text (valid UTF-8) shows nothing: every character is whitespace
 * (bs_text_is_space) or an invisible format character (general category Cf:
 * U+00AD, U+200B to U+200F, U+2060, U+FEFF, ...). The empty text is blank. */
gboolean bs_text_is_blank (const char *text);

/* A copy of @text (valid UTF-8) without leading and trailing bs_text_is_space
 * characters. Format characters are kept: "\u200BDune" stays as it is. */
char *bs_text_trim (const char *text);

/* @text (valid UTF-8) trimmed, then checked: no forbidden control, not blank
 * unless @allow_blank, at most @max_chars characters. The errors are
 * BS_ERROR_VALIDATION and name @field. On success *@out is the trimmed text. */
gboolean bs_text_check (const char *field, const char *text, gboolean allow_blank, guint max_chars,
                        char **out, GError **error);

G_END_DECLS
