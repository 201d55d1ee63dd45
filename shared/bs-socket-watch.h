/* bs-socket-watch.h: wait for a connection's socket to become readable
 * without changing the loop's poll set.
 *
 * GLib 2.74 writes to a context's eventfd every time a descriptor enters or
 * leaves its poll set: when a source holding one is attached or destroyed,
 * and twice more each time such a source, or a source above it, is
 * dispatched. libsoup waits for each request with a fresh tree of sources
 * over the socket's, so that cost about four write(2) per request. A watch
 * instead keeps the socket in the poll set for the connection's life and
 * only changes which events it asks for (a field of our own GPollFD, read
 * anew at every poll), and the sources it hands out hold no descriptor.
 *
 * One thread: create, use and close a watch on the loop whose context is the
 * thread default. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BsSocketWatch BsSocketWatch;

BsSocketWatch *bs_socket_watch_new (int fd);
/* Takes @fd out of the poll set for good (before it is closed); sources
 * handed out become ready, so that their owners read and see the end. */
void bs_socket_watch_close (BsSocketWatch *watch);
/* Closes @watch if needed, and drops the caller's reference. */
void bs_socket_watch_unref (BsSocketWatch *watch);

/* A source without a descriptor that is ready when @fd is readable, or has
 * an error or hang-up, or @watch is closed; while any such source exists,
 * the watch asks for G_IO_IN. To be added with g_source_add_child_source():
 * it has no callback of its own, and cannot take the dummy closure that
 * g_pollable_source_new_full() would give it. */
GSource *bs_socket_watch_create_source (BsSocketWatch *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BsSocketWatch, bs_socket_watch_unref)

G_END_DECLS
