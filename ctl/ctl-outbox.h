/* ctl-outbox.h: the orders database's outbox backlog. */
#pragma once

#include "ctl.h"

G_BEGIN_DECLS

/* Rows not yet published and the age of the oldest (0 when none), from
 * the orders database (DATABASE_URL of orders.env). */
gboolean ctl_outbox_read (Ctl *ctl, gint64 *pending, gint64 *oldest_seconds, GError **error);

G_END_DECLS
