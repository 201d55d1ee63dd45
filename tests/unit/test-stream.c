/* test-stream.c: stream ids, and which consumer names are of a stopped
 * process of this host. */
#include "bs-stream.h"
#include "bs-test.h"

#include <sys/wait.h>
#include <unistd.h>

static void
test_id_parse (void)
{
  static const struct
  {
    const char *text;
    gboolean ok;
    guint64 ms, seq;
  } cases[] = {
    { "1700000000000-0", TRUE, 1700000000000, 0 },
    { "0-1", TRUE, 0, 1 },
    { "42", TRUE, 42, 0 },
    { "18446744073709551615-18446744073709551615", TRUE, G_MAXUINT64, G_MAXUINT64 },
    { "18446744073709551616-0", FALSE, 0, 0 },
    { "", FALSE, 0, 0 },
    { "-", FALSE, 0, 0 },
    { "1-", FALSE, 0, 0 },
    { "-1", FALSE, 0, 0 },
    { "1-2-3", FALSE, 0, 0 },
    { "+1-0", FALSE, 0, 0 },
    { " 1-0", FALSE, 0, 0 },
    { "1-0x", FALSE, 0, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      BsStreamId id = { 7, 7 };
      gboolean ok = bs_stream_id_parse (cases[i].text, &id);

      if (ok != cases[i].ok || (ok && (id.ms != cases[i].ms || id.seq != cases[i].seq)))
        bs_test_fail ("\"%s\": ok %d ms %" G_GUINT64_FORMAT " seq %" G_GUINT64_FORMAT,
                      cases[i].text, ok, id.ms, id.seq);
    }
  g_assert_false (bs_stream_id_parse (NULL, &(BsStreamId){ 0 }));
}

static void
test_id_order (void)
{
  BsStreamId a = { 5, 9 }, b = { 6, 0 }, c = { 6, 0 };
  BsStreamId last = { 5, G_MAXUINT64 }, top = { G_MAXUINT64, G_MAXUINT64 };
  BsStreamId next;
  char buf[BS_STREAM_ID_MAX];

  g_assert_cmpint (bs_stream_id_compare (&a, &b), <, 0);
  g_assert_cmpint (bs_stream_id_compare (&b, &a), >, 0);
  g_assert_cmpint (bs_stream_id_compare (&b, &c), ==, 0);
  next = bs_stream_id_next (&a);
  g_assert_cmpstr (bs_stream_id_format (&next, buf), ==, "5-10");
  next = bs_stream_id_next (&last);
  g_assert_cmpstr (bs_stream_id_format (&next, buf), ==, "6-0");
  next = bs_stream_id_next (&top); /* nothing after it: stays */
  g_assert_cmpint (bs_stream_id_compare (&next, &top), ==, 0);
  g_assert_cmpstr (bs_stream_id_format (&top, buf), ==,
                   "18446744073709551615-18446744073709551615");
}

/* The pid of a child that has exited and been reaped. */
static pid_t
dead_pid (void)
{
  pid_t pid = fork ();
  int status = 0;

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    _exit (0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  return pid;
}

static void
test_dead_here (void)
{
  const char *host = g_get_host_name ();
  g_autofree char *own = bs_stream_default_consumer ();
  g_autofree char *self = g_strdup_printf ("%s-%ld", host, (long) getpid ());
  g_autofree char *parent = g_strdup_printf ("%s-%ld", host, (long) getppid ());
  g_autofree char *dead = g_strdup_printf ("%s-%ld", host, (long) dead_pid ());
  g_autofree char *dead_elsewhere = g_strdup_printf ("%s.other-%ld", host, (long) dead_pid ());
  g_autofree char *not_pid = g_strdup_printf ("%s-worker", host);
  g_autofree char *instance = g_strdup_printf ("%s-2-x", host);
  g_autofree char *zero = g_strdup_printf ("%s-0", host);
  g_autofree char *huge = g_strdup_printf ("%s-99999999999", host);

  g_assert_cmpstr (own, ==, self);
  g_assert_false (bs_stream_consumer_is_dead_here (own, own));
  g_assert_false (bs_stream_consumer_is_dead_here (self, "someone-else"));
  g_assert_false (bs_stream_consumer_is_dead_here (parent, own));
  g_assert_true (bs_stream_consumer_is_dead_here (dead, own));
  g_assert_false (bs_stream_consumer_is_dead_here (dead, dead)); /* our own name */
  g_assert_false (bs_stream_consumer_is_dead_here (dead_elsewhere, own));
  g_assert_false (bs_stream_consumer_is_dead_here (not_pid, own));
  g_assert_false (bs_stream_consumer_is_dead_here (instance, own));
  g_assert_false (bs_stream_consumer_is_dead_here (zero, own));
  g_assert_false (bs_stream_consumer_is_dead_here (huge, own));
  g_assert_false (bs_stream_consumer_is_dead_here (host, own));
  g_assert_false (bs_stream_consumer_is_dead_here ("", own));
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/bs/stream/id-parse", test_id_parse);
  g_test_add_func ("/bs/stream/id-order", test_id_order);
  g_test_add_func ("/bs/stream/dead-here", test_dead_here);
  return g_test_run ();
}
