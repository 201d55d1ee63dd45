/* bs-heap-trim.c: malloc_trim() once a peak of connections has passed. */
#include "bs-heap-trim.h"

#include <malloc.h>

gboolean
bs_heap_trim_check (BsHeapTrim *trim, guint open_connections)
{
  bs_heap_trim_note (trim, open_connections);
  if (trim->peak < BS_HEAP_TRIM_MIN_PEAK || open_connections > trim->peak / 4)
    return FALSE;
  malloc_trim (0);
  g_debug ("heap trimmed after a peak of %u connections (%u open)", trim->peak, open_connections);
  trim->peak = open_connections;
  trim->trims++;
  return TRUE;
}
