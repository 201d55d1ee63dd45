"""W3C Trace Context across the three daemons (shared/bs-trace.h): one order's
trace id in the log records of Orders, Books and the worker, in that order,
with each span's parent the span that caused it; the enqueue path (worker →
Orders → Books) in one trace too; status entries Orders refuses are logged
in their trace; the job's and Orders' Books call's latency exemplars carry
the trace id; a malformed traceparent, or none, starts a new trace, never an
error.

Real Books, Orders and worker daemons on real PostgreSQL and Redis; the
records are the daemons' JSON log lines (harness.Daemon.log_records)."""

import json
import re
import uuid

import pytest
import requests

from harness import ServicePair, parse_ts, raw_exchange, scaled, wait_for
from worker_harness import entries, run_enqueue, start_worker
from worker_harness import redis_server, workers  # noqa: F401 - fixtures

EVENTS = "bookstore:orders:events"
REQUESTS = "bookstore:order-requests"
STATUS = "bookstore:orders:status"
NOTIFICATIONS = "bookstore:notifications"
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")
SPAN_ID_RE = re.compile(r"[0-9a-f]{16}")


def redis_env(server, program):
    """The Redis variables of `program` (its own ACL user where the harness
    makes one)."""
    try:
        return server.env(program)
    except TypeError:
        return server.env()


@pytest.fixture
def pair(odaemons, redis_server):
    """Books + Orders, Orders publishing its events to the test's Redis."""
    return ServicePair(odaemons, orders_env={**redis_env(redis_server, "orders"),
                                             "ORDERS_RELAY_INTERVAL_MS": 200})


@pytest.fixture
def book(pair):
    return pair.books_api.create_book(title="Traced", author="T. Race", price="3.50")


def traced(daemon, trace_id):
    """The daemon's records in the trace, in the order written."""
    return [r for r in daemon.log_records() if r.get("TRACE_ID") == trace_id]


def one(records, what, **fields):
    found = [r for r in records if all(r.get(k) == str(v) for k, v in fields.items())]
    assert len(found) == 1, f"{what}: {len(found)} records with {fields} among {records}"
    return found[0]


def access(daemon, request_id):
    """The access record of the request with X-Request-ID `request_id`."""
    recs = daemon.wait_for_log(lambda r: r.get("REQUEST_ID") == request_id and "HTTP_STATUS" in r,
                               timeout=scaled(5), message=f"the access record of {request_id}")
    assert len(recs) == 1, recs
    return recs[0]


def assert_span(rec, trace_id, parent=None):
    """A record of a span of `trace_id` whose parent is `parent` (None: the
    span began the trace)."""
    assert rec.get("TRACE_ID") == trace_id, rec
    assert SPAN_ID_RE.fullmatch(rec.get("SPAN_ID", "")), rec
    if parent is None:
        assert "PARENT_SPAN_ID" not in rec, rec
    else:
        assert rec.get("PARENT_SPAN_ID") == parent, rec
        assert rec["SPAN_ID"] != parent, rec


def ts(rec):
    return parse_ts(rec["TIMESTAMP"])


def exemplar_traces(daemon, family, **labels):
    """The trace ids of the exemplars of `family`'s buckets (with `labels`),
    in the daemon's OpenMetrics exposition."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    resp = requests.get(daemon.url("/metrics"), timeout=10,
                        headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    assert resp.status_code == 200, resp.text
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    return [s.exemplar.labels["trace_id"] for s in families[family].samples
            if s.name.endswith("_bucket") and s.exemplar is not None
            and labels.items() <= s.labels.items()]


# --------------------------------------------------------------------------
# one order through Orders, Books and the worker


def test_one_order_one_trace_through_the_three_units(workers, redis_server, pair, book):
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    resp = pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                         headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE,
                                  "X-Request-ID": "traced-order"})
    assert resp.status_code == 201, resp.text
    order_id = str(resp.json()["id"])

    # Orders: the request's span, a child of the client's, and its call to Books
    post = access(pair.orders, "traced-order")
    assert_span(post, TRACE, PARENT)
    orders_span = post["SPAN_ID"]
    call = one(traced(pair.orders, TRACE), "Orders' call to Books", UPSTREAM="books")
    assert_span(call, TRACE, orders_span)
    assert call["UPSTREAM_PATH"] == f"/v1/books/{book['id']}" and call["REQUEST_ID"] == "traced-order"

    # Books: a span whose parent is Orders' call
    fetch = access(pair.books, "traced-order")
    assert fetch["HTTP_PATH"] == f"/v1/books/{book['id']}"
    assert_span(fetch, TRACE, call["SPAN_ID"])

    # the event: Orders' span as parent, the tracestate as it came
    (_, event), = wait_for(lambda: [e for e in entries(redis_server.client(), EVENTS)
                                    if e[1].get("order_id") == order_id], scaled(15),
                           message="the order's event")
    assert event["traceparent"] == f"00-{TRACE}-{orders_span}-01", event
    assert event["tracestate"] == TRACESTATE, event

    # the worker: every record of the order's job in the trace, one span
    done = w.wait_for_log(lambda r: r.get("ORDER_ID") == order_id and r.get("QUEUE") == "process-order"
                          and "completed" in r.get("MESSAGE", ""), timeout=scaled(20),
                          message="the order completed")
    job = [r for r in w.log_records() if r.get("ORDER_ID") == order_id and r.get("QUEUE") == "process-order"]
    assert len(job) >= 5, job  # processing, three steps, completed
    for rec in job:
        assert_span(rec, TRACE, orders_span)
    assert len({r["SPAN_ID"] for r in job}) == 1, job
    worker_span = done[0]["SPAN_ID"]
    note = w.wait_for_log(lambda r: r.get("NOTIFICATION_TYPE") == "order.completed"
                          and r.get("ORDER_ID") == order_id, timeout=scaled(10),
                          message="the notification record")[0]
    assert_span(note, TRACE, worker_span)

    # the worker's entries (processing, completed; the notification) pass the
    # tracestate on with its span as their parent
    published = [e for stream in (STATUS, NOTIFICATIONS)
                 for _, e in entries(redis_server.client(), stream) if e.get("order_id") == order_id]
    assert sorted(e.get("status", e.get("type")) for e in published) == \
        ["completed", "order.completed", "processing"], published
    for e in published:
        assert e["traceparent"] == f"00-{TRACE}-{worker_span}-01" and e["tracestate"] == TRACESTATE, e

    # Orders applies the statuses the worker sent, in the worker's trace
    applied = pair.orders.wait_for_log(lambda r: r.get("ORDER_ID") == order_id
                                       and r.get("ORDER_STATUS") == "completed", timeout=scaled(15),
                                       message="the completed status applied")[0]
    assert_span(applied, TRACE, worker_span)

    # in order: Orders before Books before the worker
    first_orders = traced(pair.orders, TRACE)[0]
    assert first_orders == call, traced(pair.orders, TRACE)
    first_books = traced(pair.books, TRACE)[0]
    first_worker = traced(w, TRACE)[0]
    assert ts(first_orders) <= ts(first_books) <= ts(first_worker), \
        (first_orders, first_books, first_worker)
    # nothing else in these units is in this trace but what the order caused
    assert all(r.get("ORDER_ID") in (None, order_id) for r in traced(w, TRACE))


def test_refused_status_entries_are_logged_in_their_trace(pair, redis_server):
    """A status entry Orders refuses (no such order, unknown status) is logged
    in the trace of its traceparent, like one it applies."""
    r = redis_server.client()

    def group_exists():
        try:
            return bool(r.xinfo_groups(STATUS))
        except Exception:  # noqa: BLE001 - no stream yet
            return False

    wait_for(group_exists, scaled(15), message="Orders' status group")
    ids = [r.xadd(STATUS, {"order_id": "987654321", "status": "completed",
                           "traceparent": TRACEPARENT}),
           r.xadd(STATUS, {"order_id": "1", "status": "shipped", "traceparent": TRACEPARENT})]
    ids = [i.decode() if isinstance(i, bytes) else i for i in ids]

    def refused():
        found = [rec for rec in pair.orders.log_records() if rec.get("REDIS_ENTRY_ID") in ids]
        return found if len(found) == len(ids) else None

    recs = wait_for(refused, scaled(15), message="the records of the refused entries")
    for rec in recs:
        assert "is invalid" in rec["MESSAGE"] and rec["LEVEL"] == "warning", rec
        assert_span(rec, TRACE, PARENT)


def test_without_tracestate_the_event_has_none(pair, book, redis_server):
    resp = pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                         headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 201, resp.text
    order_id = str(resp.json()["id"])
    (_, event), = wait_for(lambda: [e for e in entries(redis_server.client(), EVENTS)
                                    if e[1].get("order_id") == order_id], scaled(15),
                           message="the order's event")
    assert event["traceparent"].startswith(f"00-{TRACE}-") and "tracestate" not in event, event


def test_without_tracestate_the_worker_publishes_none(workers, redis_server, pair, book):
    start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    resp = pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                         headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 201, resp.text
    order_id = str(resp.json()["id"])
    published = wait_for(lambda: [e for _, e in entries(redis_server.client(), STATUS)
                                  if e.get("order_id") == order_id and e["status"] == "completed"],
                         scaled(20), message="the completed status")
    assert published[0]["traceparent"].startswith(f"00-{TRACE}-"), published
    assert "tracestate" not in published[0], published


# --------------------------------------------------------------------------
# the enqueue path: bookstore-enqueue → worker → Orders → Books


def test_enqueued_order_one_trace_through_worker_orders_books(workers, redis_server, pair, book):
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    status, out, err = run_enqueue(redis_server, "--book-id", book["id"], "--quantity", 2,
                                   "--request-id", "traced-job", "--wait", 30)
    assert status == 0, (out, err)
    lines = [json.loads(line) for line in out.splitlines()]
    trace_id = lines[0]["trace_id"]
    assert TRACE_ID_RE.fullmatch(trace_id), lines
    assert lines[1]["outcome"] == "created", lines
    order_id = str(lines[1]["order_id"])
    (_, job), = [e for e in entries(redis_server.client(), REQUESTS) if e[0] == lines[0]["job_id"]]
    enqueue_span = job["traceparent"].split("-")[2]

    # the worker: the job's span (child of bookstore-enqueue's) and its call
    outcome = w.wait_for_log(lambda r: r.get("TRACE_ID") == trace_id and "created" in r.get("MESSAGE", "")
                             and r.get("REQUEST_ID") == "traced-job", timeout=scaled(10),
                             message="the job's outcome")[0]
    assert_span(outcome, trace_id, enqueue_span)
    call = one(traced(w, trace_id), "the worker's call to Orders", UPSTREAM="orders")
    assert_span(call, trace_id, outcome["SPAN_ID"])

    # Orders: the POST is a child of the worker's call; Books a child of Orders'
    post = access(pair.orders, "traced-job")
    assert post["HTTP_METHOD"] == "POST" and post["HTTP_STATUS"] == "201", post
    assert_span(post, trace_id, call["SPAN_ID"])
    books_call = one(traced(pair.orders, trace_id), "Orders' call to Books", UPSTREAM="books")
    assert_span(books_call, trace_id, post["SPAN_ID"])
    fetch = access(pair.books, "traced-job")
    assert_span(fetch, trace_id, books_call["SPAN_ID"])

    # and the order it created goes on in the same trace through the worker
    processed = w.wait_for_log(lambda r: r.get("ORDER_ID") == order_id and r.get("QUEUE") == "process-order",
                               timeout=scaled(20), message="the order processed")[0]
    assert_span(processed, trace_id, post["SPAN_ID"])

    # in order: worker, Orders, Books, then the worker's processing
    assert ts(call) <= ts(books_call) <= ts(fetch) <= ts(processed), (call, books_call, fetch, processed)

    # the job's latency has its trace id as exemplar (OpenMetrics), as Orders'
    # call to Books has
    assert wait_for(lambda: exemplar_traces(w, "worker_job_duration_seconds",
                                            queue="create-order") == [trace_id], scaled(10),
                    message="the job's exemplar")
    assert exemplar_traces(pair.orders, "books_request_duration_seconds") == [trace_id]


def test_enqueue_continues_a_given_trace(redis_server):
    rc = redis_server.client()
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   "--traceparent", TRACEPARENT)
    assert status == 0, err
    job_id = json.loads(out)["job_id"]
    (_, job), = [e for e in entries(rc, REQUESTS) if e[0] == job_id]
    version, trace_id, span, flags = job["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01") and span != PARENT, job
    # from the environment too, and an invalid one there starts a new trace
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   env={"TRACEPARENT": TRACEPARENT})
    assert status == 0 and json.loads(out)["trace_id"] == TRACE, (out, err)
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   env={"TRACEPARENT": TRACEPARENT.upper()})
    assert status == 0, err
    fresh = json.loads(out)["trace_id"]
    assert TRACE_ID_RE.fullmatch(fresh) and fresh != TRACE, out


def test_enqueue_refuses_an_invalid_traceparent_option(redis_server):
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   "--traceparent", "00-nope")
    assert status == 64 and "--traceparent" in err and out == "", (status, out, err)
    assert redis_server.client().exists(REQUESTS) == 0


# --------------------------------------------------------------------------
# malformed or absent: a new trace, never an error

MALFORMED = {
    "wrong length": f"00-{TRACE}-{PARENT}-1",
    "too long for version 00": f"00-{TRACE}-{PARENT}-01-extra",
    "uppercase": f"00-{TRACE.upper()}-{PARENT}-01",
    "all-zero trace id": f"00-{'0' * 32}-{PARENT}-01",
    "all-zero parent id": f"00-{TRACE}-{'0' * 16}-01",
    "version ff": f"ff-{TRACE}-{PARENT}-01",
    "garbage": "garbage",
    "empty": "",
    "not hex": f"00-{TRACE[:-1]}g-{PARENT}-01",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_traceparent_starts_a_new_trace(pair, book, kind):
    request_id = f"malformed-{uuid.uuid4()}"
    resp = pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                         headers={"traceparent": MALFORMED[kind], "tracestate": TRACESTATE,
                                  "X-Request-ID": request_id})
    assert resp.status_code == 201, resp.text
    post = access(pair.orders, request_id)
    trace_id = post["TRACE_ID"]
    assert TRACE_ID_RE.fullmatch(trace_id) and trace_id != TRACE, post
    assert_span(post, trace_id, None)  # a new trace: no parent
    # Books is in the new trace too, never the malformed one
    fetch = access(pair.books, request_id)
    assert fetch["TRACE_ID"] == trace_id, fetch
    for daemon in (pair.orders, pair.books):
        assert not traced(daemon, TRACE), traced(daemon, TRACE)


def test_malformed_traceparent_on_books_and_errors(pair):
    """Any route, any status: the record has a fresh trace, the answer is as usual."""
    s = requests.Session()
    for path, status in (("/v1/books", 200), ("/v1/books/987654", 404), ("/health", 200)):
        request_id = f"books-{uuid.uuid4()}"
        resp = s.get(pair.books.url(path), headers={"traceparent": "00-" + "x" * 52,
                                                    "X-Request-ID": request_id}, timeout=5)
        assert resp.status_code == status, resp.text
        rec = access(pair.books, request_id)
        assert TRACE_ID_RE.fullmatch(rec["TRACE_ID"]), rec
        assert_span(rec, rec["TRACE_ID"], None)


def test_two_traceparent_headers_are_malformed(pair, book):
    request_id = f"twice-{uuid.uuid4()}"
    body = json.dumps({"book_id": book["id"], "quantity": 1}).encode()
    head = (f"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {request_id}\r\n"
            f"traceparent: {TRACEPARENT}\r\ntraceparent: 00-{'1' * 32}-{PARENT}-01\r\n\r\n").encode()
    status = raw_exchange(pair.orders.port, head, [body])[0]
    assert status == 201, status
    post = access(pair.orders, request_id)
    assert post["TRACE_ID"] not in (TRACE, "1" * 32), post
    assert_span(post, post["TRACE_ID"], None)


def test_no_traceparent_a_new_trace_per_request(pair, book):
    ids = []
    for n in range(3):
        request_id = f"untraced-{n}-{uuid.uuid4()}"
        resp = pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                             headers={"X-Request-ID": request_id})
        assert resp.status_code == 201, resp.text
        post = access(pair.orders, request_id)
        assert_span(post, post["TRACE_ID"], None)
        assert TRACE_ID_RE.fullmatch(post["TRACE_ID"]), post
        # Books continues Orders' new trace
        assert access(pair.books, request_id)["TRACE_ID"] == post["TRACE_ID"]
        ids.append(post["TRACE_ID"])
    assert len(set(ids)) == 3, ids


def test_records_outside_requests_have_no_trace(pair):
    startup = [r for r in pair.orders.log_records() if "listening" in r.get("MESSAGE", "")]
    assert startup, pair.orders.log_records()
    assert all("TRACE_ID" not in r for r in startup), startup
