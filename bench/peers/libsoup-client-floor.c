/* libsoup-client-floor.c: the floor under bookstore-orders' calls to Books.
 *
 * A bare libsoup-3 client used the default way: one thread, one GMainLoop,
 * SoupSessions that keep CONCURRENCY GETs of URL in flight over keep-alive
 * connections for DURATION seconds, each answer read whole with
 * soup_session_send_and_read_async(). No JSON, no circuit breaker, no
 * metrics: what is left is libsoup's own cost per call, the least a libsoup
 * client can spend. It prints the calls made, calls a second and the CPU
 * (user + system, getrusage) of its own process per call.
 *
 *   gcc -O2 -o /tmp/libsoup-client-floor bench/peers/libsoup-client-floor.c \
 *     $(pkg-config --cflags --libs libsoup-3.0)
 *   URL=http://127.0.0.1:8001/v1/books/1 /tmp/libsoup-client-floor
 *
 * Environment: URL (required), CONCURRENCY (calls in flight, default 64),
 * SESSIONS (default 1; calls are spread over them in turn), MAX_CONNS
 * (max-conns-per-host of each session, default CONCURRENCY / SESSIONS),
 * DURATION (seconds, default 10), WARMUP (seconds before counting,
 * default 2). Exits non-zero if a call failed or answered other than 200. */
#include <libsoup/soup.h>
#include <stdlib.h>
#include <sys/resource.h>

typedef struct
{
  GMainLoop *loop;
  const char *url;
  SoupSession **sessions;
  guint n_sessions;
  guint next_session;
  gint64 counting_from_us; /* 0 while warming up */
  double cpu_at_start;     /* CPU seconds when counting began */
  gint64 stop_at_us;
  guint64 calls;
  guint in_flight;
  gboolean failed;
} Floor;

static void send_one (Floor *floor);

static void
answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Floor *floor = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body
      = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);

  floor->in_flight--;
  if (body == NULL || soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      g_printerr ("libsoup-client-floor: %s\n",
                  error != NULL ? error->message : soup_message_get_reason_phrase (msg));
      floor->failed = TRUE;
      g_main_loop_quit (floor->loop);
      return;
    }
  if (floor->counting_from_us > 0)
    floor->calls++;
  if (g_get_monotonic_time () < floor->stop_at_us)
    send_one (floor);
  else if (floor->in_flight == 0)
    g_main_loop_quit (floor->loop);
}

static void
send_one (Floor *floor)
{
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", floor->url);
  SoupSession *session = floor->sessions[floor->next_session++ % floor->n_sessions];

  floor->in_flight++;
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, answered, floor);
}

static double
cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (double) usage.ru_utime.tv_sec + (double) usage.ru_utime.tv_usec / 1e6
         + (double) usage.ru_stime.tv_sec + (double) usage.ru_stime.tv_usec / 1e6;
}

static gboolean
start_counting (gpointer user_data)
{
  Floor *floor = user_data;

  floor->counting_from_us = g_get_monotonic_time ();
  floor->cpu_at_start = cpu_seconds ();
  return G_SOURCE_REMOVE;
}

static guint
env_uint (const char *name, guint fallback)
{
  const char *value = g_getenv (name);
  guint64 number;

  if (value == NULL)
    return fallback;
  if (!g_ascii_string_to_unsigned (value, 10, 1, 100000, &number, NULL))
    {
      g_printerr ("libsoup-client-floor: %s must be 1..100000\n", name);
      exit (EXIT_FAILURE);
    }
  return (guint) number;
}

int
main (void)
{
  Floor floor = { 0 };
  guint concurrency = env_uint ("CONCURRENCY", 64);
  guint max_conns;
  guint duration = env_uint ("DURATION", 10);
  guint warmup = env_uint ("WARMUP", 2);
  gint64 ended_us;
  double cpu;

  floor.url = g_getenv ("URL");
  if (floor.url == NULL)
    {
      g_printerr ("libsoup-client-floor: URL is required\n");
      return EXIT_FAILURE;
    }
  floor.n_sessions = env_uint ("SESSIONS", 1);
  max_conns = env_uint ("MAX_CONNS", MAX (concurrency / floor.n_sessions, 1));
  floor.sessions = g_new0 (SoupSession *, floor.n_sessions);
  for (guint i = 0; i < floor.n_sessions; i++)
    floor.sessions[i] = soup_session_new_with_options ("max-conns-per-host", max_conns, "max-conns",
                                                       max_conns * 2, NULL);
  floor.loop = g_main_loop_new (NULL, FALSE);
  floor.stop_at_us = g_get_monotonic_time () + (gint64) (warmup + duration) * G_USEC_PER_SEC;
  g_timeout_add_seconds (warmup, start_counting, &floor);
  for (guint i = 0; i < concurrency; i++)
    send_one (&floor);
  g_main_loop_run (floor.loop);
  ended_us = g_get_monotonic_time ();
  cpu = cpu_seconds () - floor.cpu_at_start;

  if (!floor.failed && floor.calls > 0)
    g_print ("calls %" G_GUINT64_FORMAT " calls/s %.0f cpu_us/call %.1f sessions %u max_conns %u "
             "concurrency %u\n",
             floor.calls, floor.calls / ((double) (ended_us - floor.counting_from_us) / 1e6),
             cpu * 1e6 / floor.calls, floor.n_sessions, max_conns, concurrency);
  for (guint i = 0; i < floor.n_sessions; i++)
    g_object_unref (floor.sessions[i]);
  g_free (floor.sessions);
  g_main_loop_unref (floor.loop);
  return floor.failed || floor.calls == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
