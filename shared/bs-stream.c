/* bs-stream.c: stream ids; the consumers that stopped processes of this
 * host left in a group. */
#include "bs-stream.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- ids ------------------------------------------------------------------------ */

static gboolean
parse_number (const char *text, gsize len, guint64 *out)
{
  g_autofree char *copy = NULL;

  if (len == 0 || len > 20)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (text[i]))
      return FALSE;
  copy = g_strndup (text, len);
  return g_ascii_string_to_unsigned (copy, 10, 0, G_MAXUINT64, out, NULL);
}

gboolean
bs_stream_id_parse (const char *text, BsStreamId *id)
{
  const char *dash;

  if (text == NULL)
    return FALSE;
  dash = strchr (text, '-');
  if (dash == NULL)
    {
      id->seq = 0;
      return parse_number (text, strlen (text), &id->ms);
    }
  return parse_number (text, (gsize) (dash - text), &id->ms)
         && parse_number (dash + 1, strlen (dash + 1), &id->seq);
}

char *
bs_stream_id_format (const BsStreamId *id, char *buf)
{
  g_snprintf (buf, BS_STREAM_ID_MAX, "%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, id->ms, id->seq);
  return buf;
}

int
bs_stream_id_compare (const BsStreamId *a, const BsStreamId *b)
{
  if (a->ms != b->ms)
    return a->ms < b->ms ? -1 : 1;
  if (a->seq != b->seq)
    return a->seq < b->seq ? -1 : 1;
  return 0;
}

BsStreamId
bs_stream_id_next (const BsStreamId *id)
{
  BsStreamId next = *id;

  if (next.seq < G_MAXUINT64)
    next.seq++;
  else if (next.ms < G_MAXUINT64)
    {
      next.ms++;
      next.seq = 0;
    }
  return next;
}

/* ---- consumer names ---------------------------------------------------------------- */

char *
bs_stream_default_consumer (void)
{
  return g_strdup_printf ("%s-%ld", g_get_host_name (), (long) getpid ());
}

gboolean
bs_stream_consumer_is_dead_here (const char *name, const char *own)
{
  const char *host = g_get_host_name ();
  gsize host_len = strlen (host);
  guint64 pid;

  if (g_strcmp0 (name, own) == 0 || strncmp (name, host, host_len) != 0 || name[host_len] != '-'
      || !parse_number (name + host_len + 1, strlen (name + host_len + 1), &pid) || pid == 0
      || pid > G_MAXINT32 || (pid_t) pid == getpid ())
    return FALSE;
  return kill ((pid_t) pid, 0) != 0 && errno == ESRCH;
}

/* ---- deleting them ------------------------------------------------------------------ */

typedef struct
{
  BsStreamConsumersFunc func;
  gpointer user_data;
  char *stream;
  char *group;
  char *own;
  guint min_idle_ms;
  GPtrArray *names;   /* to delete (owned) */
  GPtrArray *deleted; /* borrowed from names; NULL-terminated at the end */
  guint waiting;      /* DELCONSUMER replies to come */
  GError *error;      /* the first failure */
} DeleteOp;

/* One DELCONSUMER: its name (borrowed from op->names). */
typedef struct
{
  DeleteOp *op;
  const char *name;
} Deletion;

static void
delete_op_finish (DeleteOp *op)
{
  g_ptr_array_add (op->deleted, NULL);
  op->func ((const char *const *) op->deleted->pdata, op->error, op->user_data);
  g_ptr_array_unref (op->deleted);
  g_ptr_array_unref (op->names);
  g_clear_error (&op->error);
  g_free (op->stream);
  g_free (op->group);
  g_free (op->own);
  g_free (op);
}

static void
consumer_deleted (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  Deletion *deletion = user_data;
  DeleteOp *op = deletion->op;

  if (error == NULL)
    g_ptr_array_add (op->deleted, (gpointer) deletion->name);
  else if (op->error == NULL)
    op->error = g_error_copy (error);
  g_free (deletion);
  if (--op->waiting == 0)
    delete_op_finish (op);
}

/* Whether the consumer (one XINFO CONSUMERS element) can go; its name. */
static const char *
consumer_to_delete (const DeleteOp *op, const redisReply *consumer)
{
  const char *name = bs_redis_reply_str (bs_redis_reply_field (consumer, "name"));
  long long pending, idle;

  if (name == NULL || !bs_redis_reply_integer (bs_redis_reply_field (consumer, "pending"), &pending)
      || !bs_redis_reply_integer (bs_redis_reply_field (consumer, "idle"), &idle) || pending != 0
      || idle < (long long) op->min_idle_ms || !bs_stream_consumer_is_dead_here (name, op->own))
    return NULL;
  return name;
}

static void
consumers_listed (BsRedis *redis, redisReply *reply, const GError *error, gpointer user_data)
{
  DeleteOp *op = user_data;

  if (error != NULL)
    {
      /* no such stream or group: nothing to delete */
      if (!g_error_matches (error, BS_REDIS_ERROR, BS_REDIS_ERROR_REPLY)
          || !(g_str_has_prefix (error->message, "NOGROUP")
               || strstr (error->message, "no such key") != NULL))
        op->error = g_error_copy (error);
      delete_op_finish (op);
      return;
    }
  for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
    {
      const char *name = consumer_to_delete (op, reply->element[i]);

      if (name != NULL)
        g_ptr_array_add (op->names, g_strdup (name)); /* the reply is freed after us */
    }
  if (op->names->len == 0)
    {
      delete_op_finish (op);
      return;
    }
  op->waiting = op->names->len;
  for (guint i = 0; i < op->names->len; i++)
    {
      Deletion *deletion = g_new0 (Deletion, 1);

      deletion->op = op;
      deletion->name = g_ptr_array_index (op->names, i);
      bs_redis_command (redis, 0, consumer_deleted, deletion, "XGROUP", "DELCONSUMER", op->stream,
                        op->group, deletion->name, NULL);
    }
}

void
bs_stream_delete_dead_consumers (BsRedis *redis, const char *stream, const char *group,
                                 const char *own, guint min_idle_ms, BsStreamConsumersFunc func,
                                 gpointer user_data)
{
  DeleteOp *op = g_new0 (DeleteOp, 1);

  op->func = func;
  op->user_data = user_data;
  op->stream = g_strdup (stream);
  op->group = g_strdup (group);
  op->own = g_strdup (own);
  op->min_idle_ms = min_idle_ms;
  op->names = g_ptr_array_new_with_free_func (g_free);
  op->deleted = g_ptr_array_new ();
  bs_redis_command (redis, 0, consumers_listed, op, "XINFO", "CONSUMERS", stream, group, NULL);
}
