/* db-pipeline-check.c: one scenario of the database pool's pipelining run
 * against a real PostgreSQL, saying what happened and whether every
 * expectation held. tests/integration/test_db_pipeline.py runs each one on
 * a database of its own:
 *
 *   BS_TEST_DSN=postgresql://... db-pipeline-check
 * many|depth-one|abort|writes|lost|lost-write|timeout
 *
 * BS_TEST_TIMEOUT_S (default 30) bounds the whole run; BS_TEST_TIME_SCALE
 * (default 1, e.g. 10 under valgrind) stretches the default query deadlines.
 * Exit status: 0 all as expected, 1 an expectation failed or the run took
 * too long, 2 bad usage or set-up. Test code: it blocks where it likes. */
#include "bs-db.h"
#include "bs-error.h"
#include "bs-metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLICATION_NAME "pipeline-check"
#define ADMIN_APPLICATION_NAME "pipeline-check-admin"
#define WANT_OK (-1)
#define N_MANY 500
#define N_DEPTH_ONE 50
#define N_LOST 40
#define N_TIMEOUT_ECHOS 10
#define KILL_AFTER_MS 150
#define KILL_MAX_TRIES 40

static const BsDbStatement statements[] = {
  { "echo", "SELECT $1::int", TRUE },
  { "divide", "SELECT 100 / $1::int", TRUE },
  { "sleep", "SELECT pg_sleep($1::float8), $2::int", TRUE },
  { "insert", "INSERT INTO pipeline_check (k) VALUES ($1::int) RETURNING k", FALSE },
  { "count", "SELECT count(*) FROM pipeline_check", TRUE },
  { NULL, NULL, FALSE },
};

typedef struct _Check Check;
typedef void (*StepFunc) (Check *check);

struct _Check
{
  const char *dsn;
  double time_scale;
  GMainLoop *loop;
  BsMetrics *metrics;
  BsDbPool *pool;
  guint pending;  /* queries asked and not answered yet */
  guint answered; /* in all */
  guint failed;   /* expectations that did not hold */
  StepFunc next;  /* run when pending drops to 0; NULL: the scenario is over */
  gint64 started_us;
  /* lost */
  guint kill_id;
  guint kill_tries;
  guint n_killed;
  guint n_busy_at_kill; /* backends running a query of the pool when it was killed */
  guint answered_at_kill;
  /* lost-write */
  PGconn *locker; /* holds a lock on pipeline_check in an open transaction */
};

typedef struct
{
  Check *check;
  char *label;
  int want_code;    /* a BsErrorCode, or WANT_OK */
  char *want_value; /* when ok: column want_column of the first row; NULL: any */
  int want_column;
  gboolean quiet; /* say nothing when as expected */
  gint64 asked_us;
} Call;

typedef struct
{
  const char *name;
  guint pool_size;
  guint pipeline_depth;     /* 0: the default */
  guint query_timeout_ms;   /* 0: the default (scaled) */
  StepFunc start;           /* asks the first queries */
  void (*finish) (Check *); /* checks after the last answer, before the pool goes; may be NULL */
} Scenario;

static void G_GNUC_PRINTF (3, 4) expect (Check *check, gboolean ok, const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  if (!ok)
    check->failed++;
  g_print ("%s: %s\n", ok ? "ok" : "FAIL", text);
}

static double
elapsed_ms (gint64 since_us)
{
  return (double) (g_get_monotonic_time () - since_us) / 1000.0;
}

/* ---- blocking SQL for set-up and faults --------------------------------- */

/* Run @sql on a connection of its own; NULL and @error set when it fails. */
static PGresult *
admin_exec (const char *dsn, const char *sql, GError **error)
{
  const char *const keywords[] = { "dbname", "application_name", NULL };
  const char *const values[] = { dsn, ADMIN_APPLICATION_NAME, NULL };
  g_autoptr (PGconn) conn = PQconnectdbParams (keywords, values, 1);
  g_autoptr (PGresult) res = NULL;

  if (conn == NULL || PQstatus (conn) != CONNECTION_OK)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_UNAVAILABLE, "connecting: %s",
                   conn != NULL ? PQerrorMessage (conn) : "out of memory");
      return NULL;
    }
  res = PQexec (conn, sql);
  if (PQresultStatus (res) != PGRES_TUPLES_OK && PQresultStatus (res) != PGRES_COMMAND_OK)
    {
      g_set_error (error, BS_ERROR, BS_ERROR_INTERNAL, "%s: %s", sql, PQresultErrorMessage (res));
      return NULL;
    }
  return g_steal_pointer (&res);
}

/* ---- queries and their expectations ------------------------------------- */

static void
call_free (Call *call)
{
  g_free (call->label);
  g_free (call->want_value);
  g_free (call);
}

static char *
want_text (const Call *call)
{
  g_autoptr (GError) want = NULL;

  if (call->want_code == WANT_OK)
    return g_strdup_printf ("ok %s", call->want_value != NULL ? call->want_value : "(any)");
  want = g_error_new_literal (BS_ERROR, call->want_code, "");
  return g_strdup (bs_error_code_name (want));
}

static const char *
result_value (const PGresult *res, int column)
{
  if (PQntuples (res) < 1 || PQnfields (res) <= column)
    return NULL;
  return PQgetvalue (res, 0, column);
}

/* Every step runs once the queries of the one before are all answered. */
static void
run_next (Check *check)
{
  while (check->pending == 0)
    {
      StepFunc next = check->next;

      check->next = NULL;
      if (next == NULL)
        {
          g_main_loop_quit (check->loop);
          return;
        }
      next (check);
    }
}

static void
call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  Check *check = call->check;
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) res = bs_db_pool_query_finish (check->pool, result, &error);
  g_autofree char *want = want_text (call);
  g_autofree char *got = NULL;
  gboolean as_expected;

  if (res != NULL)
    {
      const char *value = result_value (res, call->want_column);
      got = g_strdup_printf ("ok %s", value != NULL ? value : "(no value)");
      as_expected = call->want_code == WANT_OK
                    && (call->want_value == NULL || g_strcmp0 (value, call->want_value) == 0);
    }
  else
    {
      got = g_strdup_printf ("%s (%s)",
                             error->domain == BS_ERROR ? bs_error_code_name (error) : "other error",
                             error->message);
      as_expected
          = call->want_code != WANT_OK && g_error_matches (error, BS_ERROR, call->want_code);
    }
  if (!as_expected || !call->quiet)
    expect (check, as_expected, "%s -> %s after %.0f ms (want %s)", call->label, got,
            elapsed_ms (call->asked_us), want);
  call_free (call);
  check->answered++;
  g_assert_cmpuint (check->pending, >, 0);
  check->pending--;
  run_next (check);
}

static void
ask (Check *check, const char *statement, const char *const *params, guint n_params,
     guint timeout_ms, int want_code, int want_value, int want_column, gboolean quiet)
{
  Call *call = g_new0 (Call, 1);
  g_autoptr (GString) label = g_string_new (statement);

  for (guint i = 0; i < n_params; i++)
    g_string_append_printf (label, "%s%s", i == 0 ? "(" : ", ", params[i]);
  if (n_params > 0)
    g_string_append_c (label, ')');
  call->check = check;
  call->label = g_string_free (g_steal_pointer (&label), FALSE);
  call->want_code = want_code;
  call->want_value = want_code == WANT_OK ? g_strdup_printf ("%d", want_value) : NULL;
  call->want_column = want_column;
  call->quiet = quiet;
  call->asked_us = g_get_monotonic_time ();
  check->pending++;
  bs_db_pool_query_async (check->pool, statement, params, n_params, timeout_ms, NULL, call_done,
                          call);
}

/* @statement with one int parameter @arg. */
static void
ask_int (Check *check, const char *statement, int arg, int want_code, int want_value,
         gboolean quiet)
{
  g_autofree char *text = g_strdup_printf ("%d", arg);
  const char *params[] = { text };

  ask (check, statement, params, 1, 0, want_code, want_value, 0, quiet);
}

/* -1 when @text has no sample named exactly @series. */
static double
metric_value (const char *text, const char *series)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  gsize len = strlen (series);

  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], series, len) == 0 && lines[i][len] == ' ')
      return g_ascii_strtod (lines[i] + len + 1, NULL);
  return -1;
}

typedef struct
{
  double syncs, ok, error, timeout, unavailable;
} Counts;

static Counts
read_counts (Check *check)
{
  g_autofree char *text = bs_metrics_render (check->metrics);
  Counts counts = {
    .syncs = metric_value (text, "db_pipeline_syncs_total"),
    .ok = metric_value (text, "db_queries_total{outcome=\"ok\"}"),
    .error = metric_value (text, "db_queries_total{outcome=\"error\"}"),
    .timeout = metric_value (text, "db_queries_total{outcome=\"timeout\"}"),
    .unavailable = metric_value (text, "db_queries_total{outcome=\"unavailable\"}"),
  };

  g_print ("metrics: db_pipeline_syncs_total %g, db_queries_total ok %g error %g timeout %g "
           "unavailable %g (-1: no sample)\n",
           counts.syncs, counts.ok, counts.error, counts.timeout, counts.unavailable);
  return counts;
}

/* ---- many: reads asked together share round trips ----------------------- */

static void
echo_all (Check *check, guint n)
{
  for (guint i = 1; i <= n; i++)
    ask_int (check, "echo", (int) i, WANT_OK, (int) i, TRUE);
  g_print ("asked %u echo queries at once\n", n);
}

static void
many_start (Check *check)
{
  echo_all (check, N_MANY);
}

static void
many_finish (Check *check)
{
  Counts counts = read_counts (check);
  double fewest = (N_MANY + 31) / 32; /* pipeline_depth 32, one connection */

  expect (check, counts.ok == N_MANY, "%g of %u queries ok", counts.ok, N_MANY);
  expect (check, counts.syncs >= fewest && counts.syncs <= 100,
          "%u queries in %g round trips (between %g and 100: batched, at most 32 each)", N_MANY,
          counts.syncs, fewest);
}

/* ---- depth-one: pipeline_depth 1 is one query per round trip ------------ */

static void
depth_one_start (Check *check)
{
  echo_all (check, N_DEPTH_ONE);
}

static void
depth_one_finish (Check *check)
{
  Counts counts = read_counts (check);

  expect (check, counts.ok == N_DEPTH_ONE, "%g of %u queries ok", counts.ok, N_DEPTH_ONE);
  expect (check, counts.syncs == N_DEPTH_ONE, "%u queries in %g round trips (want %u)", N_DEPTH_ONE,
          counts.syncs, N_DEPTH_ONE);
}

/* ---- abort: a failed query does not take its batch down with it --------- */

static void
abort_start (Check *check)
{
  ask_int (check, "echo", 1, WANT_OK, 1, FALSE);
  ask_int (check, "divide", 0, BS_ERROR_VALIDATION, 0, FALSE);
  ask_int (check, "echo", 3, WANT_OK, 3, FALSE);
  ask_int (check, "echo", 4, WANT_OK, 4, FALSE);
}

static void
abort_finish (Check *check)
{
  Counts counts = read_counts (check);

  expect (check, counts.ok == 3 && counts.error == 1, "3 ok and 1 error counted (%g and %g)",
          counts.ok, counts.error);
}

/* ---- writes: each its own transaction ----------------------------------- */

static void
writes_count (Check *check)
{
  ask (check, "count", NULL, 0, 0, WANT_OK, 2, 0, FALSE);
}

static void
writes_start (Check *check)
{
  ask_int (check, "insert", 1, WANT_OK, 1, FALSE);
  ask_int (check, "insert", 1, BS_ERROR_CONFLICT, 0, FALSE);
  ask_int (check, "insert", 2, WANT_OK, 2, FALSE);
  check->next = writes_count;
}

static void
writes_finish (Check *check)
{
  Counts counts = read_counts (check);

  expect (check, counts.syncs >= 4, "%g round trips for 3 writes and 1 read (want one each)",
          counts.syncs);
}

/* ---- lost: reads in flight on a killed connection are sent again -------- */

/* How many of the pool's backends are waiting on @wait_condition (SQL on
 * pg_stat_activity's columns). */
static guint
count_pool_backends (Check *check, const char *wait_condition)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM pg_stat_activity "
                                          "WHERE application_name = '" APPLICATION_NAME
                                          "' AND datname = current_database() AND %s",
                                          wait_condition);
  g_autoptr (PGresult) res = admin_exec (check->dsn, sql, &error);

  if (res == NULL)
    g_error ("counting the pool's backends: %s", error->message);
  return (guint) atoi (PQgetvalue (res, 0, 0));
}

/* pg_terminate_backend() on every backend of the pool; how many it ended. */
static guint
terminate_pool_backends (Check *check)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) killed = NULL;
  guint n = 0;

  killed = admin_exec (check->dsn,
                       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = '" APPLICATION_NAME
                       "' AND datname = current_database() AND pid <> pg_backend_pid()",
                       &error);
  if (killed == NULL)
    g_error ("terminating the pool's backends: %s", error->message);
  for (int i = 0; i < PQntuples (killed); i++)
    if (g_str_equal (PQgetvalue (killed, i, 0), "t"))
      n++;
  return n;
}

static gboolean
lost_kill_cb (gpointer user_data)
{
  Check *check = user_data;

  /* wait until the sleeps run on the server, so that the kill finds them there */
  check->n_busy_at_kill = count_pool_backends (check, "wait_event = 'PgSleep'");
  if (check->n_busy_at_kill == 0 && ++check->kill_tries < KILL_MAX_TRIES)
    return G_SOURCE_CONTINUE;

  check->answered_at_kill = check->answered;
  check->n_killed = terminate_pool_backends (check);
  g_print ("after %.0f ms: %u backends running pg_sleep, %u of %u queries answered; "
           "terminated %u backends\n",
           elapsed_ms (check->started_us), check->n_busy_at_kill, check->answered_at_kill, N_LOST,
           check->n_killed);
  check->kill_id = 0;
  return G_SOURCE_REMOVE;
}

static void
lost_one_more (Check *check)
{
  ask_int (check, "echo", N_LOST + 1, WANT_OK, N_LOST + 1, FALSE);
}

static void
lost_start (Check *check)
{
  for (guint i = 1; i <= N_LOST; i++)
    {
      g_autofree char *text = g_strdup_printf ("%u", i);
      const char *params[] = { "0.5", text };

      ask (check, "sleep", params, 2, 0, WANT_OK, (int) i, 1, FALSE);
    }
  check->next = lost_one_more;
  check->kill_id = g_timeout_add (KILL_AFTER_MS, lost_kill_cb, check);
}

static void
lost_finish (Check *check)
{
  read_counts (check);
  g_clear_handle_id (&check->kill_id, g_source_remove);
  expect (check, check->n_busy_at_kill >= 1,
          "queries were running when the backends were terminated (%u backends in pg_sleep)",
          check->n_busy_at_kill);
  expect (check, check->n_killed >= 1, "terminated %u of the pool's backends (want >= 1)",
          check->n_killed);
  expect (check, check->answered_at_kill < N_LOST,
          "%u of %u sleeps were in flight or waiting when their connections were killed",
          N_LOST - check->answered_at_kill, N_LOST);
}

/* ---- lost-write: a write on a lost connection fails, it is not sent again */

static gboolean
lost_write_kill_cb (gpointer user_data)
{
  Check *check = user_data;
  g_autoptr (PGresult) committed = NULL;

  /* the insert waits for the lock on the server: kill its connection there */
  check->n_busy_at_kill = count_pool_backends (check, "wait_event_type = 'Lock'");
  if (check->n_busy_at_kill == 0 && ++check->kill_tries < KILL_MAX_TRIES)
    return G_SOURCE_CONTINUE;

  check->answered_at_kill = check->answered;
  check->n_killed = terminate_pool_backends (check);
  g_print ("after %.0f ms: %u backends waiting for the lock; terminated %u backends\n",
           elapsed_ms (check->started_us), check->n_busy_at_kill, check->n_killed);
  committed = PQexec (check->locker, "COMMIT");
  if (PQresultStatus (committed) != PGRES_COMMAND_OK)
    g_error ("releasing the lock: %s", PQerrorMessage (check->locker));
  g_clear_pointer (&check->locker, PQfinish);
  check->kill_id = 0;
  return G_SOURCE_REMOVE;
}

static void
lost_write_after (Check *check)
{
  /* it did not happen, and the pool works again */
  ask (check, "count", NULL, 0, 0, WANT_OK, 0, 0, FALSE);
  ask_int (check, "echo", 2, WANT_OK, 2, FALSE);
}

static void
lost_write_insert (Check *check)
{
  const char *const keywords[] = { "dbname", "application_name", NULL };
  const char *const values[] = { check->dsn, ADMIN_APPLICATION_NAME, NULL };
  g_autoptr (PGresult) locked = NULL;

  /* SHARE: inserts wait, preparing the statements on a new connection does not */
  check->locker = PQconnectdbParams (keywords, values, 1);
  locked = PQexec (check->locker, "BEGIN; LOCK TABLE pipeline_check IN SHARE MODE");
  if (PQresultStatus (locked) != PGRES_COMMAND_OK)
    g_error ("locking pipeline_check: %s", PQerrorMessage (check->locker));
  ask_int (check, "insert", 7, BS_ERROR_UNAVAILABLE, 0, FALSE);
  check->next = lost_write_after;
  check->kill_id = g_timeout_add (KILL_AFTER_MS, lost_write_kill_cb, check);
}

static void
lost_write_start (Check *check)
{
  ask_int (check, "echo", 1, WANT_OK, 1, FALSE); /* connected and prepared */
  check->next = lost_write_insert;
}

static void
lost_write_finish (Check *check)
{
  read_counts (check);
  g_clear_handle_id (&check->kill_id, g_source_remove);
  g_clear_pointer (&check->locker, PQfinish);
  expect (check, check->n_busy_at_kill >= 1 && check->n_killed >= 1,
          "terminated %u backends while %u waited for the lock (want >= 1 each)", check->n_killed,
          check->n_busy_at_kill);
}

/* ---- timeout: a query past its deadline drops its connection, not its batch */

static void
timeout_start (Check *check)
{
  const char *params[] = { "3", "0" };

  ask (check, "sleep", params, 2, 300, BS_ERROR_TIMEOUT, 0, 1, FALSE);
  for (guint i = 1; i <= N_TIMEOUT_ECHOS; i++)
    ask_int (check, "echo", (int) i, WANT_OK, (int) i, FALSE);
}

static void
timeout_finish (Check *check)
{
  Counts counts = read_counts (check);

  expect (check, counts.timeout == 1 && counts.ok == N_TIMEOUT_ECHOS,
          "1 timeout and %u ok counted (%g and %g)", N_TIMEOUT_ECHOS, counts.timeout, counts.ok);
}

static const Scenario scenarios[] = {
  { "many", 1, 0, 0, many_start, many_finish },
  { "depth-one", 1, 1, 0, depth_one_start, depth_one_finish },
  { "abort", 1, 0, 0, abort_start, abort_finish },
  { "writes", 1, 0, 0, writes_start, writes_finish },
  /* 20 sleeps of 0.5 s in a row on each connection: 10 s, after the kill */
  { "lost", 2, N_LOST / 2, 20000, lost_start, lost_finish },
  { "lost-write", 1, 0, 0, lost_write_start, lost_write_finish },
  { "timeout", 1, 0, 0, timeout_start, timeout_finish },
};

/* ---- main --------------------------------------------------------------- */

static gboolean
deadline_cb (gpointer user_data)
{
  Check *check = user_data;

  g_print ("FAIL: still running after %.0f ms: %u queries unanswered\n",
           elapsed_ms (check->started_us), check->pending);
  exit (1);
}

static double
env_double (const char *name, double fallback)
{
  const char *value = g_getenv (name);
  double parsed = value != NULL ? g_ascii_strtod (value, NULL) : 0;

  return parsed > 0 ? parsed : fallback;
}

static void
run (Check *check, const Scenario *scenario)
{
  BsDbOptions options;

  bs_db_options_init_default (&options);
  options.application_name = APPLICATION_NAME;
  options.size = scenario->pool_size;
  if (scenario->pipeline_depth > 0)
    options.pipeline_depth = scenario->pipeline_depth;
  options.query_timeout_ms = (guint) ((scenario->query_timeout_ms > 0 ? scenario->query_timeout_ms
                                                                      : options.query_timeout_ms)
                                      * check->time_scale);
  check->metrics = bs_metrics_new ();
  check->pool = bs_db_pool_new (check->dsn, statements, &options, check->metrics);
  check->loop = g_main_loop_new (NULL, FALSE);
  bs_db_pool_start (check->pool);

  check->started_us = g_get_monotonic_time ();
  scenario->start (check);
  run_next (check); /* quits at once if nothing was asked */
  g_main_loop_run (check->loop);
  g_print ("all %u queries answered after %.0f ms\n", check->answered,
           elapsed_ms (check->started_us));
  if (scenario->finish != NULL)
    scenario->finish (check);

  g_clear_pointer (&check->pool, bs_db_pool_free);
  g_clear_pointer (&check->metrics, bs_metrics_free);
  g_clear_pointer (&check->loop, g_main_loop_unref);
}

int
main (int argc, char **argv)
{
  Check check = { 0 };
  const Scenario *scenario = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PGresult) created = NULL;
  double timeout_s = env_double ("BS_TEST_TIMEOUT_S", 30);

  setvbuf (stdout, NULL, _IOLBF, 0);
  for (gsize i = 0; argc == 2 && i < G_N_ELEMENTS (scenarios); i++)
    if (g_str_equal (argv[1], scenarios[i].name))
      scenario = &scenarios[i];
  check.dsn = g_getenv ("BS_TEST_DSN");
  if (scenario == NULL || check.dsn == NULL)
    {
      g_printerr ("usage: BS_TEST_DSN=... %s many|depth-one|abort|writes|lost|lost-write|timeout\n",
                  argv[0]);
      return 2;
    }
  check.time_scale = env_double ("BS_TEST_TIME_SCALE", 1);

  /* every connection of the pool prepares "insert" and "count" */
  created = admin_exec (check.dsn,
                        "CREATE TABLE IF NOT EXISTS pipeline_check (k int PRIMARY KEY); "
                        "TRUNCATE pipeline_check",
                        &error);
  if (created == NULL)
    {
      g_printerr ("setting up: %s\n", error->message);
      return 2;
    }

  g_print ("scenario %s\n", scenario->name);
  g_timeout_add ((guint) (timeout_s * 1000), deadline_cb, &check);
  run (&check, scenario);
  if (check.failed > 0)
    {
      g_print ("FAIL: scenario %s: %u expectations did not hold\n", scenario->name, check.failed);
      return 1;
    }
  g_print ("PASS: scenario %s\n", scenario->name);
  return 0;
}
