/* bs-heap-trim.h: give the heap a burst of connections left behind back to
 * the kernel once the burst is over.
 *
 * glibc keeps freed memory in its arenas: after 2,000 connections in a
 * second a daemon's RSS stayed 30 MB up although every connection was
 * closed. When the number of open connections falls to a quarter of a peak
 * of at least BS_HEAP_TRIM_MIN_PEAK, or once BS_HEAP_TRIM_MIN_ACCEPTED
 * connections came and went (at most every 10 s), malloc_trim(0) returns
 * the free pages
 * (measured: 46 MB → 15 MB, with G_SLICE=always-malloc as the units set;
 * GLib 2.74's slice magazines keep another 11 MB out of its reach).
 * Short connections one after another never make a peak, yet leave as
 * much behind: 1,000 of them, 8 at a time, kept Books 5-8 MB up. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BS_HEAP_TRIM_MIN_PEAK 64
/* connections accepted since the last trim that make one worth it too */
#define BS_HEAP_TRIM_MIN_ACCEPTED 256
/* at most one trim in this long, however the load swings */
#define BS_HEAP_TRIM_MIN_INTERVAL_US (10 * G_USEC_PER_SEC)

typedef struct
{
  guint peak;     /* most connections open since the last trim */
  guint accepted; /* connections accepted since the last trim */
  gint64 last_us; /* monotonic time of the last trim */
  guint64 trims;
} BsHeapTrim;

/* After each accepted connection: note it, and how many are open now. */
static inline void
bs_heap_trim_note (BsHeapTrim *trim, guint open_connections)
{
  trim->peak = MAX (trim->peak, open_connections);
  if (trim->accepted < G_MAXUINT)
    trim->accepted++;
}

/* From a periodic timer, @now_us the monotonic time: trims when a peak or
 * a stream of connections has passed. TRUE when it did. */
gboolean bs_heap_trim_check (BsHeapTrim *trim, guint open_connections, gint64 now_us);

G_END_DECLS
