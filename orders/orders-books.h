/* orders-books.h: the Books service as Orders sees it: fetch a book, check
 * health, behind a circuit breaker, with metrics. */
#pragma once

#include "bs-metrics.h"
#include "bs-trace.h"

#include <gio/gio.h>

G_BEGIN_DECLS

/* What an order snapshots of a book. */
typedef struct
{
  char *title;
  char *author;
  gint64 price_cents;
} OrdersBook;

void orders_book_free (OrdersBook *book);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OrdersBook, orders_book_free)

typedef struct
{
  const char *base_url;    /* BOOKS_SERVICE_URL */
  const char *ca_file;     /* BOOKS_CA_FILE for https, or NULL: the system's */
  guint timeout_ms;        /* deadline of one call */
  guint failure_threshold; /* consecutive failures that open the circuit */
  guint cooldown_ms;       /* open → half-open */
  guint max_connections;   /* keep-alive connections to Books */
  guint max_waiting;       /* calls waiting for one of them; beyond, shed */
} OrdersBooksOptions;

typedef struct _OrdersBooks OrdersBooks;

/* BS_ERROR_CONFIG when the base URL is invalid. With @share_breaker_of, the
 * client of another event loop, both use its circuit breaker (and only it
 * reports the circuit's state in its metrics). */
OrdersBooks *orders_books_new (const OrdersBooksOptions *options, OrdersBooks *share_breaker_of,
                               BsMetrics *metrics, GError **error);
void orders_books_free (OrdersBooks *books);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OrdersBooks, orders_books_free)

/* GET /v1/books/{id} with @request_id forwarded, as a span of its own, a
 * child of @trace (the request's span; NULL: a new trace), logged when it
 * starts (bs_log_call()); its traceparent and @tracestate (may be NULL) go
 * with it. Errors: BS_ERROR_NOT_FOUND,
 * BS_ERROR_BOOK_NOT_ORDERABLE (deleted), BS_ERROR_UNAVAILABLE (Books down,
 * slow, failing, the circuit is open, or max_connections + max_waiting calls
 * are already in flight; *@retry_after_s then says when to try again), BS_ERROR_BAD_GATEWAY (Books
 * answered nonsense), or G_IO_ERROR_CANCELLED. */
void orders_books_get_book_async (OrdersBooks *books, gint64 book_id, const char *request_id,
                                  const BsTrace *trace, const char *tracestate,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
OrdersBook *orders_books_get_book_finish (OrdersBooks *books, GAsyncResult *result,
                                          guint *retry_after_s, GError **error);

/* GET /health on Books within @timeout_ms, outside the circuit breaker:
 * TRUE when it answers 200. Checks asked for while one runs share it. */
void orders_books_check_health_async (OrdersBooks *books, guint timeout_ms,
                                      GAsyncReadyCallback callback, gpointer user_data);
gboolean orders_books_check_health_finish (OrdersBooks *books, GAsyncResult *result);

G_END_DECLS
