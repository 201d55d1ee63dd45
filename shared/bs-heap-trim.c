/* bs-heap-trim.c: malloc_trim() once a peak or a stream of connections has passed. */
#include "bs-heap-trim.h"

#include <malloc.h>

gboolean
bs_heap_trim_check (BsHeapTrim *trim, guint open_connections, gint64 now_us)
{
  trim->peak = MAX (trim->peak, open_connections);
  if ((trim->peak < BS_HEAP_TRIM_MIN_PEAK && trim->accepted < BS_HEAP_TRIM_MIN_ACCEPTED)
      || open_connections > trim->peak / 4
      || (trim->trims > 0 && now_us - trim->last_us < BS_HEAP_TRIM_MIN_INTERVAL_US))
    return FALSE;
  malloc_trim (0);
  g_debug ("heap trimmed after %u connections, at most %u at once (%u open)", trim->accepted,
           trim->peak, open_connections);
  trim->peak = open_connections;
  trim->accepted = 0;
  trim->last_us = now_us;
  trim->trims++;
  return TRUE;
}
