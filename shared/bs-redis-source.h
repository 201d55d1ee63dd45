/* bs-redis-source.h: drive a hiredis async context from the GLib main loop.
 *
 * Our own adapter instead of hiredis's adapters/glib.h, which reads on a
 * context already freed by a failed write (pitfalls.md, hiredis 15): this
 * one forgets the context in hiredis's cleanup hook and checks before each
 * read. The source lives exactly as long as the context. */
#pragma once

#include <glib.h>
#include <hiredis/async.h>

G_BEGIN_DECLS

/* Hook @ac's events into the thread-default main context. Call once, right
 * after redisAsyncConnect() succeeded. The source is owned by the context
 * and destroyed by hiredis's cleanup (when @ac is freed). */
void bs_redis_source_attach (redisAsyncContext *ac);

G_END_DECLS
