/* ctl-units.h: the bookstore units as systemd sees them (sd-bus). */
#pragma once

#include "ctl.h"

G_BEGIN_DECLS

/* {"available": bool, "reason"?: ..., "units": [{name, load_state,
 * active_state, sub_state, since_us, uptime_seconds, restarts, main_pid,
 * healthy}]} for every loaded bookstore-*.service; @healthy is cleared when
 * a unit is not active. Without systemd: available false, and @healthy is
 * left alone (the other checks tell). */
JsonNode *ctl_units_status (Ctl *ctl, gboolean *healthy);

G_END_DECLS
