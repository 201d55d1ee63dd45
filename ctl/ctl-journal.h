/* ctl-journal.h: the journal records of one trace. */
#pragma once

#include "ctl.h"

G_BEGIN_DECLS

/* {"available": bool, "reason"?, "entries": [{time_us, unit, identifier,
 * priority, message}]}: the records with TRACE_ID=@trace_id on this host,
 * oldest first, at most @limit. @trace_id NULL: unavailable, saying why. */
JsonNode *ctl_journal_trace (const char *trace_id, guint limit);

G_END_DECLS
