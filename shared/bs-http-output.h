/* bs-http-output.h: the stream libsoup writes a plain-HTTP response
 * through.
 *
 * libsoup 3.2 writes a response's head and its body in two writes, so each
 * response cost two send(2) calls and two TCP segments. This stream keeps
 * a final response's head (a write that begins "HTTP/1.x 2..5xx" and ends
 * with the blank line) until the next write, the body, and sends both with
 * one sendmsg(2). A response without a body is sent when libsoup flushes
 * (it does at the end of every response). If the socket cannot take what is
 * kept, the rest goes when it can, before anything written after it.
 *
 * One thread: the loop's that serves the connection. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BS_TYPE_HTTP_OUTPUT (bs_http_output_get_type ())
G_DECLARE_FINAL_TYPE (BsHttpOutput, bs_http_output, BS, HTTP_OUTPUT, GOutputStream)

/* Takes a reference on @socket (connected). */
BsHttpOutput *bs_http_output_new (GSocket *socket);

/* What was written and not yet sent (NULL if nothing), taken out of the
 * stream: for whoever sends on the socket after it. */
GBytes *bs_http_output_take_unsent (BsHttpOutput *output);

G_END_DECLS
