/* bs-http-target.h: what request targets we route. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when @target (@len bytes, printable ASCII) is an origin-form target we
 * route as written: a path starting with "/", well-formed %XX escapes that
 * decode to UTF-8 without NUL, no encoded "/" and no "." or ".." segment in
 * the path (a proxy rule written against the path cannot be bypassed), no
 * fragment. Otherwise FALSE and a static @message for the 400. */
gboolean bs_http_target_check (const char *target, gsize len, const char **message);

G_END_DECLS
