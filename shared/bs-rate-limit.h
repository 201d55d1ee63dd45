/* bs-rate-limit.h: a token bucket per client address for writes. Each
 * client may make @per_second writes a second on average and @burst at
 * once; the table of clients is bounded (least recently seen goes first),
 * so a flood of source addresses cannot grow memory. One table is shared
 * by every event loop of a daemon: its lock is held for a hash lookup. */
#pragma once

#include "bs-client-address.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BsRateLimit BsRateLimit;

#define BS_RATE_LIMIT_DEFAULT_CLIENTS 10000

/* @per_second and @burst at least 1; @max_clients at least 1. */
BsRateLimit *bs_rate_limit_new (guint per_second, guint burst, guint max_clients);
BsRateLimit *bs_rate_limit_ref (BsRateLimit *limit);
void bs_rate_limit_unref (BsRateLimit *limit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsRateLimit, bs_rate_limit_unref)

/* From RATE_LIMIT_WRITES (per second; 0 or unset: off, *out is NULL),
 * RATE_LIMIT_BURST (default twice the rate), RATE_LIMIT_CLIENTS (the
 * table's bound) and RATE_LIMIT_EXEMPT (addresses and networks never
 * limited, such as a local worker). A bad value is a BS_ERROR_CONFIG naming
 * the variable. */
gboolean bs_rate_limit_new_from_environment (BsRateLimit **out, GError **error);

/* Take one token from @client's bucket at @now_us (monotonic). TRUE: go
 * ahead. FALSE: over the limit; *@retry_after_s (if not NULL) is when the
 * next token is there, in whole seconds, at least 1. */
gboolean bs_rate_limit_take (BsRateLimit *limit, const char *client, gint64 now_us,
                             guint *retry_after_s);

/* @exempt (may be NULL) is referenced. */
void bs_rate_limit_set_exempt (BsRateLimit *limit, BsAddressSet *exempt);
gboolean bs_rate_limit_is_exempt (BsRateLimit *limit, GInetAddress *client);

guint bs_rate_limit_get_n_clients (BsRateLimit *limit);
guint bs_rate_limit_get_per_second (BsRateLimit *limit);
guint bs_rate_limit_get_burst (BsRateLimit *limit);
guint bs_rate_limit_get_max_clients (BsRateLimit *limit);

G_END_DECLS
