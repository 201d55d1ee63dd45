/* bs-idempotency-key.h: the one rule for an order's Idempotency-Key, shared by
 * Orders (the header), bookstore-enqueue (--idempotency-key) and the worker
 * (a job's idempotency_key field). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BS_IDEMPOTENCY_KEY_MAX 255

/* TRUE when @key is 1 to BS_IDEMPOTENCY_KEY_MAX visible ASCII characters
 * (0x21 to 0x7E): no space, control, DEL or non-ASCII byte, so it can travel
 * in an HTTP header unchanged. NULL (no key) is fine: callers decide what no
 * key means. Otherwise BS_ERROR_VALIDATION naming "Idempotency-Key". */
gboolean bs_idempotency_key_check (const char *key, GError **error);

G_END_DECLS
