/* bs-stream-trimmer.c: one pass at a time: TIME, then each stream in turn.
 *
 * A consumed stream: XINFO STREAM and XINFO GROUPS (pipelined, in this
 * order), XPENDING (summary) of each group with pending entries, then XTRIM
 * MINID when the cut is past the first entry: a stream where nothing
 * changed costs three small replies. A capped stream: XLEN, then XTRIM
 * MAXLEN when it is over its cap.
 *
 * Lifetime: the trimmer is reference counted; the stream being visited
 * holds a reference, so a reply that arrives after bs_stream_trimmer_free()
 * finds it marked freed and only lets go. */
#include "bs-stream-trimmer.h"

#include "bs-stream.h"

#include <string.h>

#define INTERVAL_MS 5000
#define MIN_INTERVAL_MS 1000
/* at most this many groups of one stream get series (a bound on labels) */
#define MAX_EXPORTED_GROUPS 32

typedef struct
{
  char *name;
  char *group;        /* consumed: the project's reader; NULL: capped */
  guint max_entries;  /* capped */
  char max_text[16];  /* the same, for XTRIM */
  gboolean failing;   /* a failure was logged: log the recovery */
  GHashTable *labels; /* group labels with series */
} Stream;

typedef struct _Visit Visit;

typedef struct
{
  Visit *visit;
  char *name;
  char *label; /* valid UTF-8, for the metrics */
  long long pending;
  gboolean lag_known;
  long long lag;
  BsStreamId last_delivered;
  BsStreamId floor; /* the first entry the group still needs */
} Group;

/* One stream in a pass. */
struct _Visit
{
  BsStreamTrimmer *trimmer; /* a reference */
  Stream *stream;
  gboolean exists;
  long long length;
  BsStreamId first, last;
  GPtrArray *groups; /* Group */
  guint waiting;     /* replies still to come */
  long long trimmed;
  GError *error; /* the first failure */
};

struct _BsStreamTrimmer
{
  BsRedis *redis;
  guint retention_ms;
  guint interval_ms;
  guint timer_id;
  gboolean started;
  gboolean stopping;
  gboolean freed;
  gboolean busy;      /* a pass in flight */
  GPtrArray *streams; /* Stream */
  guint next;         /* the pass: the stream to visit next */
  BsStreamId retention_cut;

  BsMetricFamily *length;
  BsMetricFamily *trimmed;
  BsMetricFamily *pending;
  BsMetricFamily *lag;
  BsMetricFamily *held;
};

static void visit_next (BsStreamTrimmer *trimmer);

static void
stream_free (gpointer data)
{
  Stream *stream = data;

  g_free (stream->name);
  g_free (stream->group);
  g_hash_table_unref (stream->labels);
  g_free (stream);
}

static void
group_free (gpointer data)
{
  Group *group = data;

  g_free (group->name);
  g_free (group->label);
  g_free (group);
}

static void
trimmer_release (BsStreamTrimmer *trimmer)
{
  g_rc_box_release (trimmer);
}

static void
visit_free (Visit *visit)
{
  g_ptr_array_unref (visit->groups);
  g_clear_error (&visit->error);
  trimmer_release (visit->trimmer);
  g_free (visit);
}

BsStreamTrimmer *
bs_stream_trimmer_new (BsRedis *redis, BsMetrics *metrics, guint retention_ms)
{
  static const char *const stream_label[] = { "stream", NULL };
  static const char *const group_labels[] = { "stream", "group", NULL };
  BsStreamTrimmer *trimmer = g_rc_box_new0 (BsStreamTrimmer);

  trimmer->redis = redis;
  trimmer->retention_ms = retention_ms;
  trimmer->interval_ms = CLAMP (retention_ms / 2, MIN_INTERVAL_MS, INTERVAL_MS);
  trimmer->streams = g_ptr_array_new_with_free_func (stream_free);
  trimmer->length = bs_metrics_gauge (metrics, "bookstore_stream_length",
                                      "Entries in the Redis stream (XLEN)", stream_label);
  trimmer->trimmed = bs_metrics_counter (
      metrics, "bookstore_stream_trimmed_total",
      "Entries this process trimmed from the stream (acknowledged by every group and older "
      "than the retention, or over the cap)",
      stream_label);
  trimmer->pending = bs_metrics_gauge (
      metrics, "bookstore_stream_group_pending",
      "Entries delivered to the consumer group and not yet acknowledged", group_labels);
  trimmer->lag = bs_metrics_gauge (metrics, "bookstore_stream_group_lag",
                                   "Entries not yet delivered to the consumer group", group_labels);
  trimmer->held = bs_metrics_gauge (
      metrics, "bookstore_stream_group_held_seconds",
      "How far past the retention the oldest entry the group still needs is: entries that old "
      "stay for this group alone (0: it holds nothing back)",
      group_labels);
  return trimmer;
}

void
bs_stream_trimmer_free (BsStreamTrimmer *trimmer)
{
  if (trimmer == NULL)
    return;
  trimmer->freed = TRUE;
  g_clear_handle_id (&trimmer->timer_id, g_source_remove);
  g_clear_pointer (&trimmer->streams, g_ptr_array_unref);
  trimmer_release (trimmer);
}

static Stream *
add_stream (BsStreamTrimmer *trimmer, const char *name)
{
  Stream *stream = g_new0 (Stream, 1);

  stream->name = g_strdup (name);
  stream->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_ptr_array_add (trimmer->streams, stream);
  bs_metric_inc (trimmer->trimmed, (const char *const[]){ name, NULL }, 0);
  return stream;
}

void
bs_stream_trimmer_add_consumed (BsStreamTrimmer *trimmer, const char *stream, const char *group)
{
  add_stream (trimmer, stream)->group = g_strdup (group);
}

void
bs_stream_trimmer_add_capped (BsStreamTrimmer *trimmer, const char *stream, guint max_entries)
{
  Stream *s = add_stream (trimmer, stream);

  s->max_entries = max_entries;
  g_snprintf (s->max_text, sizeof s->max_text, "%u", max_entries);
}

/* ---- the end of a visit: metrics, the next stream ------------------------------- */

static void
report_failure (Visit *visit)
{
  Stream *stream = visit->stream;

  if (visit->error == NULL)
    {
      if (stream->failing)
        g_message ("stream %s: trimming works again", stream->name);
      stream->failing = FALSE;
    }
  else if (g_error_matches (visit->error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY))
    {
      if (!stream->failing)
        g_warning ("stream %s: not trimmed: %s; trying again every %u ms", stream->name,
                   visit->error->message, visit->trimmer->interval_ms);
      stream->failing = TRUE;
    }
  else /* bs-redis logs the outages */
    g_debug ("stream %s: not trimmed: %s", stream->name, visit->error->message);
}

/* Seconds past the retention of the oldest entry @group still needs. */
static double
held_seconds (const Visit *visit, const Group *group)
{
  const BsStreamId *cut = &visit->trimmer->retention_cut;
  const BsStreamId *needed = &group->floor;

  if (visit->length <= 0)
    return 0;
  if (bs_stream_id_compare (needed, &visit->first) < 0)
    needed = &visit->first;
  if (bs_stream_id_compare (needed, &visit->last) > 0 || needed->ms >= cut->ms)
    return 0; /* read to the end, or needs nothing past the retention */
  return (double) (cut->ms - needed->ms) / 1000.0;
}

static void
export_groups (Visit *visit)
{
  BsStreamTrimmer *trimmer = visit->trimmer;
  Stream *stream = visit->stream;
  g_autoptr (GHashTable) now = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  gpointer label;

  for (guint i = 0; i < visit->groups->len && i < MAX_EXPORTED_GROUPS; i++)
    {
      Group *group = g_ptr_array_index (visit->groups, i);
      const char *const labels[] = { stream->name, group->label, NULL };

      bs_metric_set (trimmer->pending, labels, (double) group->pending);
      if (group->lag_known) /* unknown after an XDEL: keep the last value */
        bs_metric_set (trimmer->lag, labels, (double) group->lag);
      bs_metric_set (trimmer->held, labels, held_seconds (visit, group));
      g_hash_table_add (now, g_strdup (group->label));
    }
  /* the series of groups that are gone */
  g_hash_table_iter_init (&iter, stream->labels);
  while (g_hash_table_iter_next (&iter, &label, NULL))
    if (!g_hash_table_contains (now, label))
      {
        const char *const labels[] = { stream->name, label, NULL };

        bs_metric_remove (trimmer->pending, labels);
        bs_metric_remove (trimmer->lag, labels);
        bs_metric_remove (trimmer->held, labels);
      }
  g_hash_table_unref (stream->labels);
  stream->labels = g_steal_pointer (&now);
}

/* The visit is over (@visit is consumed): the next stream, or the end of the
 * pass when the trimmer is gone, stopping, or the connection failed. */
static void
visit_done (Visit *visit)
{
  BsStreamTrimmer *trimmer = visit->trimmer;
  const char *const stream_labels[] = { visit->stream->name, NULL };
  gboolean go_on;

  if (trimmer->freed)
    {
      visit_free (visit);
      return;
    }
  report_failure (visit);
  if (visit->error == NULL)
    {
      bs_metric_set (trimmer->length, stream_labels, (double) MAX (visit->length, 0));
      bs_metric_inc (trimmer->trimmed, stream_labels, (double) visit->trimmed);
      if (visit->stream->group != NULL)
        export_groups (visit);
    }
  go_on = visit->error == NULL || visit->error->domain != G_IO_ERROR;
  visit_free (visit); /* drops its reference; the owner's remains */
  if (go_on && !trimmer->stopping)
    visit_next (trimmer);
  else
    trimmer->busy = FALSE;
}

static gboolean
visit_failed (Visit *visit, const GError *error)
{
  if (error == NULL)
    return FALSE;
  if (visit->error == NULL)
    visit->error = g_error_copy (error);
  return TRUE;
}

/* ---- capped streams: XLEN, XTRIM MAXLEN ---------------------------------------------- */

static void
trimmed_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Visit *visit = user_data;
  long long n;

  if (!visit_failed (visit, error) && bs_redis_reply_integer (reply, &n))
    {
      visit->trimmed = n;
      visit->length = MAX (visit->length - n, 0);
    }
  visit_done (visit);
}

static void
length_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Visit *visit = user_data;
  Stream *stream = visit->stream;

  if (visit_failed (visit, error) || visit->trimmer->freed
      || !bs_redis_reply_integer (reply, &visit->length)
      || visit->length <= (long long) stream->max_entries)
    {
      visit_done (visit);
      return;
    }
  bs_redis_command (redis, 0, trimmed_cb, visit, "XTRIM", stream->name, "MAXLEN", stream->max_text,
                    NULL);
}

/* ---- consumed streams ------------------------------------------------------------------ */

/* The lowest of the groups' floors and the retention cut; FALSE when
 * nothing may go (the project's group is not there yet). */
static gboolean
compute_cut (const Visit *visit, BsStreamId *cut)
{
  gboolean reader_found = FALSE;

  *cut = visit->trimmer->retention_cut;
  for (guint i = 0; i < visit->groups->len; i++)
    {
      const Group *group = g_ptr_array_index (visit->groups, i);

      if (g_strcmp0 (group->name, visit->stream->group) == 0)
        reader_found = TRUE;
      if (bs_stream_id_compare (&group->floor, cut) < 0)
        *cut = group->floor;
    }
  return reader_found;
}

/* Every group's floor is known: trim, if that removes anything. */
static void
trim_consumed (Visit *visit)
{
  BsStreamId cut;
  char cut_text[BS_STREAM_ID_MAX];

  if (visit->error != NULL || visit->trimmer->freed || !visit->exists || visit->length == 0
      || !compute_cut (visit, &cut) || bs_stream_id_compare (&cut, &visit->first) <= 0)
    {
      visit_done (visit);
      return;
    }
  bs_redis_command (visit->trimmer->redis, 0, trimmed_cb, visit, "XTRIM", visit->stream->name,
                    "MINID", bs_stream_id_format (&cut, cut_text), NULL);
}

/* XPENDING <stream> <group>: [count, smallest id, greatest id, consumers].
 * The lower of the oldest pending entry and the floor so far (XCLAIM FORCE
 * can make an entry pending that was never delivered); FALSE when the reply
 * is not that. */
static gboolean
lower_floor (Group *group, const redisReply *reply)
{
  long long count;
  BsStreamId oldest;

  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
      || !bs_redis_reply_integer (reply->element[0], &count))
    return FALSE;
  if (count <= 0)
    return TRUE;
  if (!bs_stream_id_parse (bs_redis_reply_str (reply->element[1]), &oldest))
    return FALSE;
  if (bs_stream_id_compare (&oldest, &group->floor) < 0)
    group->floor = oldest;
  return TRUE;
}

static void
pending_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Group *group = user_data;
  Visit *visit = group->visit;

  if (!visit_failed (visit, error) && !lower_floor (group, reply))
    {
      g_autoptr (GError) own_error
          = g_error_new (BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY, "unexpected XPENDING reply");

      visit_failed (visit, own_error);
    }
  if (--visit->waiting == 0)
    trim_consumed (visit);
}

/* Each group's floor: its oldest pending entry (read after the group, so
 * after its last-delivered-id), or else the entry after last-delivered-id. */
static void
read_floors (Visit *visit)
{
  if (visit->error != NULL || visit->trimmer->freed || !visit->exists)
    {
      visit_done (visit);
      return;
    }
  visit->waiting = 1; /* until every XPENDING is sent */
  for (guint i = 0; i < visit->groups->len; i++)
    {
      Group *group = g_ptr_array_index (visit->groups, i);

      group->floor = bs_stream_id_next (&group->last_delivered);
      if (group->pending <= 0)
        continue;
      visit->waiting++;
      bs_redis_command (visit->trimmer->redis, 0, pending_cb, group, "XPENDING",
                        visit->stream->name, group->name, NULL);
    }
  if (--visit->waiting == 0)
    trim_consumed (visit);
}

static Group *
parse_group (Visit *visit, const redisReply *info)
{
  g_autoptr (GPtrArray) holder = g_ptr_array_new_with_free_func (group_free);
  Group *group = g_new0 (Group, 1);
  const char *name = bs_redis_reply_str (bs_redis_reply_field (info, "name"));

  g_ptr_array_add (holder, group);
  group->visit = visit;
  if (name == NULL
      || !bs_redis_reply_integer (bs_redis_reply_field (info, "pending"), &group->pending)
      || !bs_stream_id_parse (bs_redis_reply_str (bs_redis_reply_field (info, "last-delivered-id")),
                              &group->last_delivered))
    return NULL;
  group->name = g_strdup (name);
  group->label = g_utf8_make_valid (name, -1);
  group->lag_known = bs_redis_reply_integer (bs_redis_reply_field (info, "lag"), &group->lag);
  return g_ptr_array_steal_index (holder, 0);
}

static void
groups_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Visit *visit = user_data;
  g_autoptr (GError) own_error = NULL;

  if (error != NULL && strstr (error->message, "no such key") != NULL)
    error = NULL; /* the stream is gone: visit->exists says so */
  else if (!visit_failed (visit, error))
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
      {
        Group *group = parse_group (visit, reply->element[i]);

        if (group == NULL)
          {
            own_error = g_error_new (BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY,
                                     "unexpected XINFO GROUPS reply");
            visit_failed (visit, own_error);
            break;
          }
        g_ptr_array_add (visit->groups, group);
      }
  if (--visit->waiting == 0)
    read_floors (visit);
}

static void
stream_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Visit *visit = user_data;
  const redisReply *first, *last;

  if (error != NULL && strstr (error->message, "no such key") != NULL)
    visit->length = 0; /* nothing to do, and 0 entries */
  else if (!visit_failed (visit, error)
           && bs_redis_reply_integer (bs_redis_reply_field (reply, "length"), &visit->length))
    {
      first = bs_redis_reply_field (reply, "first-entry");
      last = bs_redis_reply_field (reply, "last-entry");
      visit->exists = TRUE;
      /* an empty stream has nil entries */
      if (first != NULL && first->type == REDIS_REPLY_ARRAY && first->elements >= 1)
        bs_stream_id_parse (bs_redis_reply_str (first->element[0]), &visit->first);
      if (last != NULL && last->type == REDIS_REPLY_ARRAY && last->elements >= 1)
        bs_stream_id_parse (bs_redis_reply_str (last->element[0]), &visit->last);
    }
  if (--visit->waiting == 0)
    read_floors (visit);
}

/* ---- the pass ----------------------------------------------------------------------------- */

static void
visit_next (BsStreamTrimmer *trimmer)
{
  Visit *visit;
  Stream *stream;

  if (trimmer->next >= trimmer->streams->len || !bs_redis_is_connected (trimmer->redis))
    {
      trimmer->busy = FALSE;
      return;
    }
  stream = g_ptr_array_index (trimmer->streams, trimmer->next++);
  visit = g_new0 (Visit, 1);
  visit->trimmer = g_rc_box_acquire (trimmer);
  visit->stream = stream;
  visit->groups = g_ptr_array_new_with_free_func (group_free);
  if (stream->group == NULL)
    {
      bs_redis_command (trimmer->redis, 0, length_cb, visit, "XLEN", stream->name, NULL);
      return;
    }
  visit->waiting = 2;
  bs_redis_command (trimmer->redis, 0, stream_cb, visit, "XINFO", "STREAM", stream->name, NULL);
  bs_redis_command (trimmer->redis, 0, groups_cb, visit, "XINFO", "GROUPS", stream->name, NULL);
}

/* TIME: [seconds, microseconds] of the Redis server, whose clock makes the ids. */
static void
time_cb (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  BsStreamTrimmer *trimmer = user_data;
  guint64 seconds, micros, now_ms;
  gboolean gone = trimmer->freed;

  trimmer_release (trimmer);
  if (gone)
    return;
  if (error != NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
      || !g_ascii_string_to_unsigned (bs_redis_reply_str (reply->element[0]), 10, 0, G_MAXUINT32,
                                      &seconds, NULL)
      || !g_ascii_string_to_unsigned (bs_redis_reply_str (reply->element[1]), 10, 0, 999999,
                                      &micros, NULL))
    {
      trimmer->busy = FALSE;
      return;
    }
  now_ms = seconds * 1000 + micros / 1000;
  trimmer->retention_cut.ms = now_ms > trimmer->retention_ms ? now_ms - trimmer->retention_ms : 0;
  trimmer->retention_cut.seq = 0;
  trimmer->next = 0;
  visit_next (trimmer);
}

static gboolean
tick (gpointer user_data)
{
  BsStreamTrimmer *trimmer = user_data;

  if (trimmer->busy || trimmer->stopping || !bs_redis_is_connected (trimmer->redis))
    return G_SOURCE_CONTINUE;
  trimmer->busy = TRUE;
  bs_redis_command (trimmer->redis, 0, time_cb, g_rc_box_acquire (trimmer), "TIME", NULL);
  return G_SOURCE_CONTINUE;
}

void
bs_stream_trimmer_start (BsStreamTrimmer *trimmer)
{
  g_return_if_fail (!trimmer->started);
  trimmer->started = TRUE;
  trimmer->timer_id = g_timeout_add (trimmer->interval_ms, tick, trimmer);
}

void
bs_stream_trimmer_stop (BsStreamTrimmer *trimmer)
{
  trimmer->stopping = TRUE;
  g_clear_handle_id (&trimmer->timer_id, g_source_remove);
}
