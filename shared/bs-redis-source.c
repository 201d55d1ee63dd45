/* bs-redis-source.c: a GSource polling one hiredis connection. */
#include "bs-redis-source.h"

typedef struct
{
  GSource source;
  redisAsyncContext *ac; /* NULL once hiredis cleaned up */
  GPollFD poll_fd;
} RedisSource;

static void
update_events (RedisSource *rs, gushort add, gushort remove)
{
  rs->poll_fd.events = (rs->poll_fd.events | add) & ~remove;
}

static void
add_read (void *data)
{
  update_events (data, G_IO_IN, 0);
}

static void
del_read (void *data)
{
  update_events (data, 0, G_IO_IN);
}

static void
add_write (void *data)
{
  update_events (data, G_IO_OUT, 0);
}

static void
del_write (void *data)
{
  update_events (data, 0, G_IO_OUT);
}

/* hiredis is freeing the context: never touch it again. Destroying the
 * source from inside its own dispatch is fine in GLib. */
static void
cleanup (void *data)
{
  RedisSource *rs = data;

  rs->ac = NULL;
  g_source_remove_poll (&rs->source, &rs->poll_fd);
  g_source_destroy (&rs->source);
}

static gboolean
source_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
source_check (GSource *source)
{
  RedisSource *rs = (RedisSource *) source;

  return (rs->poll_fd.revents & (rs->poll_fd.events | G_IO_ERR | G_IO_HUP)) != 0;
}

static gboolean
source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  RedisSource *rs = (RedisSource *) source;
  gushort revents = rs->poll_fd.revents;
  gushort events = rs->poll_fd.events;

  /* an error on a connecting socket is the connect's result: a write event */
  if (rs->ac != NULL
      && ((revents & G_IO_OUT) || ((revents & (G_IO_ERR | G_IO_HUP)) && (events & G_IO_OUT))))
    redisAsyncHandleWrite (rs->ac);
  /* the write may have failed and freed the context */
  if (rs->ac != NULL && (revents & (G_IO_IN | G_IO_ERR | G_IO_HUP)))
    redisAsyncHandleRead (rs->ac);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs redis_source_funcs = {
  .prepare = source_prepare,
  .check = source_check,
  .dispatch = source_dispatch,
};

void
bs_redis_source_attach (redisAsyncContext *ac)
{
  GSource *source = g_source_new (&redis_source_funcs, sizeof (RedisSource));
  RedisSource *rs = (RedisSource *) source;

  g_return_if_fail (ac->ev.data == NULL);
  g_source_set_can_recurse (source, TRUE); /* no eventfd writes per dispatch: see bs_fd_add() */
  rs->ac = ac;
  rs->poll_fd.fd = ac->c.fd;
  rs->poll_fd.events = 0;
  g_source_add_poll (source, &rs->poll_fd);
  g_source_set_name (source, "bs-redis");

  ac->ev.data = rs;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;

  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source); /* the main context holds it until cleanup */
}
