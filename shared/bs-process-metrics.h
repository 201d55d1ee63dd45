/* bs-process-metrics.h: process_* metrics read from /proc at scrape time. */
#pragma once

#include "bs-metrics.h"

G_BEGIN_DECLS

/* Register process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, refreshed on every rendering. */
void bs_process_metrics_register (BsMetrics *metrics);

G_END_DECLS
