/* bs-process-metrics.c: the standard process collector, from /proc/self. */
#include "bs-process-metrics.h"

#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct
{
  BsMetricFamily *cpu;
  BsMetricFamily *rss;
  BsMetricFamily *vsize;
  BsMetricFamily *open_fds;
  BsMetricFamily *max_fds;
  BsMetricFamily *start_time;
} ProcessMetrics;

/* The wall-clock time of boot: now minus the time since boot. Not btime from
 * /proc/stat, which the units hide (ProcSubset=pid). starttime in
 * /proc/self/stat counts from boot on the same clock as CLOCK_BOOTTIME. */
static double
boot_time_seconds (void)
{
  struct timespec since_boot;

  if (clock_gettime (CLOCK_BOOTTIME, &since_boot) != 0)
    return 0;
  return (double) g_get_real_time () / G_USEC_PER_SEC
         - ((double) since_boot.tv_sec + (double) since_boot.tv_nsec / 1e9);
}

static void
collect (BsMetrics *metrics, gpointer user_data)
{
  ProcessMetrics *pm = user_data;
  g_autofree char *stat = NULL;
  struct rlimit limit;
  guint n_fds = 0;
  g_autoptr (GDir) dir = NULL;

  if (g_file_get_contents ("/proc/self/stat", &stat, NULL, NULL))
    {
      /* fields after the ")" that ends comm: state is field 3 */
      const char *p = strrchr (stat, ')');
      g_auto (GStrv) fields = p != NULL ? g_strsplit (p + 2, " ", -1) : NULL;
      double ticks = (double) sysconf (_SC_CLK_TCK);
      double page = (double) sysconf (_SC_PAGESIZE);

      if (fields != NULL && g_strv_length (fields) > 22)
        {
          /* utime=14 stime=15 starttime=22 vsize=23 rss=24 (1-based, so -3 here) */
          double utime = g_ascii_strtod (fields[11], NULL);
          double stime = g_ascii_strtod (fields[12], NULL);
          double start = g_ascii_strtod (fields[19], NULL);
          bs_metric_set (pm->cpu, NULL, (utime + stime) / ticks);
          bs_metric_set (pm->start_time, NULL, boot_time_seconds () + start / ticks);
          bs_metric_set (pm->vsize, NULL, g_ascii_strtod (fields[20], NULL));
          bs_metric_set (pm->rss, NULL, g_ascii_strtod (fields[21], NULL) * page);
        }
    }

  dir = g_dir_open ("/proc/self/fd", 0, NULL);
  if (dir != NULL)
    {
      while (g_dir_read_name (dir) != NULL)
        n_fds++;
      bs_metric_set (pm->open_fds, NULL, n_fds > 0 ? n_fds - 1 : 0); /* minus the dir itself */
    }
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0)
    bs_metric_set (pm->max_fds, NULL, (double) limit.rlim_cur);
}

void
bs_process_metrics_register (BsMetrics *metrics)
{
  ProcessMetrics *pm = g_new0 (ProcessMetrics, 1);

  pm->cpu = bs_metrics_counter (metrics, "process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.", NULL);
  pm->rss = bs_metrics_gauge (metrics, "process_resident_memory_bytes",
                              "Resident memory size in bytes.", NULL);
  pm->vsize = bs_metrics_gauge (metrics, "process_virtual_memory_bytes",
                                "Virtual memory size in bytes.", NULL);
  pm->open_fds
      = bs_metrics_gauge (metrics, "process_open_fds", "Number of open file descriptors.", NULL);
  pm->max_fds = bs_metrics_gauge (metrics, "process_max_fds",
                                  "Maximum number of open file descriptors.", NULL);
  pm->start_time
      = bs_metrics_gauge (metrics, "process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.", NULL);
  bs_metrics_add_collector (metrics, collect, pm, g_free);
}
