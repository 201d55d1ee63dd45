"""Redis stays bounded (issue 12): each service trims the streams it writes
(docs/events.md, "Trimming").

Orders trims bookstore:orders:events; the worker trims bookstore:orders:status,
bookstore:notifications and bookstore:order-requests once every consumer group
has acknowledged an entry and the retention (ORDERS_/WORKER_STREAM_RETENTION_MS)
has passed, and caps bookstore:order-results and the <stream>:dead streams
(WORKER_RESULTS_MAX_ENTRIES, WORKER_DEAD_MAX_ENTRIES). A group that stops
reading holds the line: nothing it still needs goes, and the metrics show it.

Real Redis, PostgreSQL, Books, Orders and worker. Nothing is timed: every wait
is a wait_for with a generous deadline."""

import pytest

from harness import ServicePair, metric_value, scaled, scrape, wait_for
from worker_harness import (EVENTS, GROUP, NOTIFICATIONS, REQUESTS, RESULTS, STATUS, add_job,
                            add_order_event, scrape_worker, start_worker)
from worker_harness import redis_server, workers  # noqa: F401 - fixtures

ORDERS_FAST = {"ORDERS_RELAY_INTERVAL_MS": 200, "ORDERS_CLAIM_IDLE_MS": 1000}
EVENTS_DEAD = EVENTS + ":dead"
REQUESTS_DEAD = REQUESTS + ":dead"


@pytest.fixture
def book_of(odaemons):
    def make(pair):
        return pair.books_api.create_book(title="Trim Book", author="T. Rim", price="3.50")
    return make


def start_pair(odaemons, redis_server, **env):
    return ServicePair(odaemons, orders_env={**redis_server.env("orders"), **ORDERS_FAST,
                                             **{k: str(v) for k, v in env.items()}})


def count_orders(pair, status):
    out = pair.orders_manager.cluster.psql(
        f"SELECT count(*) FROM orders WHERE status = '{status}'", db=pair.orders_db)
    return int(out.strip())


def wait_orders(pair, n, status="completed", timeout=None):
    wait_for(lambda: count_orders(pair, status) == n, timeout or scaled(45),
             message=f"{n} orders {status}")


def series(samples, name, **labels):
    """The values of the series of `name` with these labels (metric_value
    reads a missing series as 0; these tests need to tell them apart)."""
    return [v for n, l, v in samples if n == name and all(l.get(k) == str(w) for k, w in labels.items())]


def gauge(samples, name, **labels):
    values = series(samples, name, **labels)
    assert len(values) == 1, f"{name}{labels}: {values}"
    return values[0]


def redis_now_ms(rc):
    seconds, micros = rc.time()
    return seconds * 1000 + micros // 1000


def id_ms(entry_id):
    return int(entry_id.split("-")[0])


def check_retention_kept(rc, streams, seen, retention_ms):
    """Every entry of `seen` (stream -> ids seen earlier) younger than the
    retention is still there. XRANGE first, then TIME: any trim that made the
    XRANGE answer used a TIME no later than ours."""
    present = {s: {i for i, _ in rc.xrange(s, "-", "+")} for s in streams}
    now = redis_now_ms(rc)
    for s in streams:
        young_gone = [i for i in seen[s] if id_ms(i) >= now - retention_ms and i not in present[s]]
        assert not young_gone, f"{s}: entries younger than {retention_ms} ms trimmed: {young_gone[:5]}"
    return present


def test_streams_shrink_to_the_retention_once_every_order_is_done(workers, redis_server, odaemons,
                                                                 book_of):
    retention_ms = int(scaled(4) * 1000)
    pair = start_pair(odaemons, redis_server, ORDERS_STREAM_RETENTION_MS=retention_ms)
    w = start_worker(workers, redis_server, env={"WORKER_STREAM_RETENTION_MS": retention_ms})
    book = book_of(pair)
    rc = redis_server.client()
    n = 100

    for _ in range(n):
        pair.api.order(book["id"], 1)
    wait_orders(pair, n)
    wait_for(lambda: metric_value(scrape_worker(w), "worker_jobs_completed_total",
                                  queue="send-notification") == n, scaled(20),
             message="every notification sent")
    streams = (EVENTS, STATUS, NOTIFICATIONS)
    seen = {s: [i for i, _ in rc.xrange(s, "-", "+")] for s in streams}
    assert seen[EVENTS] or seen[STATUS], "everything was trimmed before the retention passed"

    def all_empty():
        present = check_retention_kept(rc, streams, seen, retention_ms)
        return all(not present[s] for s in streams)

    wait_for(all_empty, retention_ms / 1000 + scaled(20), interval=0.2,
             message="the events, status and notification streams trimmed to nothing")
    assert rc.xlen(EVENTS) == rc.xlen(STATUS) == rc.xlen(NOTIFICATIONS) == 0

    def metrics_show_it():
        o, wk = scrape(pair.orders), scrape_worker(w)
        return (series(o, "bookstore_stream_length", stream=EVENTS) == [0]
                and series(wk, "bookstore_stream_length", stream=STATUS) == [0]
                and series(wk, "bookstore_stream_length", stream=NOTIFICATIONS) == [0])

    wait_for(metrics_show_it, scaled(15), message="bookstore_stream_length 0 for the three streams")
    o, wk = scrape(pair.orders), scrape_worker(w)
    assert gauge(o, "bookstore_stream_trimmed_total", stream=EVENTS) == n
    assert gauge(wk, "bookstore_stream_trimmed_total", stream=STATUS) == 2 * n  # processing, completed
    assert gauge(wk, "bookstore_stream_trimmed_total", stream=NOTIFICATIONS) == n
    for samples, stream, group in ((o, EVENTS, GROUP), (wk, STATUS, "bookstore-orders"),
                                   (wk, NOTIFICATIONS, GROUP)):
        labels = {"stream": stream, "group": group}
        assert gauge(samples, "bookstore_stream_group_pending", **labels) == 0
        assert gauge(samples, "bookstore_stream_group_lag", **labels) == 0
        assert gauge(samples, "bookstore_stream_group_held_seconds", **labels) == 0


def test_a_group_that_does_not_read_holds_the_line(workers, redis_server, odaemons, book_of):
    rc = redis_server.client()
    rc.xgroup_create(EVENTS, "audit", id="0", mkstream=True)  # never reads, for now
    pair = start_pair(odaemons, redis_server, ORDERS_STREAM_RETENTION_MS=0)
    start_worker(workers, redis_server)
    book = book_of(pair)
    n = 30

    ids = [pair.api.order(book["id"], 1)["id"] for _ in range(n)]
    wait_orders(pair, n)

    def audit(samples, name):
        return series(samples, name, stream=EVENTS, group="audit")

    def lag_shown():
        samples = scrape(pair.orders)
        return audit(samples, "bookstore_stream_group_lag") == [n] and \
            audit(samples, "bookstore_stream_group_held_seconds")[0] > 0

    wait_for(lag_shown, scaled(15), message="the audit group's lag and held seconds in the metrics")
    samples = scrape(pair.orders)
    assert audit(samples, "bookstore_stream_group_pending") == [0]
    assert series(samples, "bookstore_stream_group_lag", stream=EVENTS, group=GROUP) == [0]
    assert series(samples, "bookstore_stream_group_held_seconds", stream=EVENTS, group=GROUP) == [0]
    assert series(samples, "bookstore_stream_length", stream=EVENTS) == [n]
    # everything after its last-delivered-id (0-0) is there, in order
    entries = rc.xrange(EVENTS, "-", "+")
    assert [int(f["order_id"]) for _, f in entries] == ids

    # it reads 20 and acknowledges 10: the 10 acknowledged go, the pending
    # ones and those not yet delivered stay
    read = rc.xreadgroup("audit", "auditor", {EVENTS: ">"}, count=20)[0][1]
    rc.xack(EVENTS, "audit", *[i for i, _ in read[:10]])
    wait_for(lambda: rc.xlen(EVENTS) == n - 10, scaled(15), message=f"{n - 10} events left")
    assert [i for i, _ in rc.xrange(EVENTS, "-", "+")] == [i for i, _ in entries[10:]]
    pending = rc.xpending(EVENTS, "audit")
    assert pending["pending"] == 10 and pending["min"] == entries[10][0], pending

    def counts_shown():
        samples = scrape(pair.orders)
        return (audit(samples, "bookstore_stream_group_pending") == [10]
                and audit(samples, "bookstore_stream_group_lag") == [n - 20]
                and series(samples, "bookstore_stream_length", stream=EVENTS) == [n - 10])

    wait_for(counts_shown, scaled(15), message="pending 10, lag 10, length 20 in the metrics")

    # done with everything: the stream empties, and a group that is gone has no series
    rest = rc.xreadgroup("audit", "auditor", {EVENTS: ">"})[0][1]
    rc.xack(EVENTS, "audit", *[i for i, _ in read[10:] + rest])
    wait_for(lambda: rc.xlen(EVENTS) == 0, scaled(15), message="the events stream empty")
    rc.xgroup_destroy(EVENTS, "audit")
    wait_for(lambda: not audit(scrape(pair.orders), "bookstore_stream_group_lag"), scaled(15),
             message="the audit group's series gone")


def test_a_stopped_worker_loses_no_event(workers, redis_server, odaemons, book_of):
    """The worker's own group lagging (the worker stopped) holds the line too;
    until the group first exists, nothing is trimmed at all."""
    rc = redis_server.client()
    pair = start_pair(odaemons, redis_server, ORDERS_STREAM_RETENTION_MS=0)
    book = book_of(pair)
    before = [pair.api.order(book["id"], 1)["id"] for _ in range(10)]
    wait_for(lambda: rc.xlen(EVENTS) == 10, scaled(15), message="10 events published")
    wait_for(lambda: series(scrape(pair.orders), "bookstore_stream_length", stream=EVENTS) == [10],
             scaled(15), message="the length in the metrics")
    assert rc.xlen(EVENTS) == 10  # no group yet: nothing trimmed

    w = start_worker(workers, redis_server)
    wait_orders(pair, 10)
    w.stop()
    during = [pair.api.order(book["id"], 1)["id"] for _ in range(10)]
    wait_for(lambda: series(scrape(pair.orders), "bookstore_stream_group_lag", stream=EVENTS,
                            group=GROUP) == [10], scaled(15), message="the worker's lag of 10")
    assert [int(f["order_id"]) for _, f in rc.xrange(EVENTS, "-", "+")] == during

    start_worker(workers, redis_server)
    wait_orders(pair, 20)
    assert count_orders(pair, "completed") == len(before + during)
    wait_for(lambda: rc.xlen(EVENTS) == 0, scaled(15), message="the events stream empty")


def test_results_and_dead_letters_are_capped(workers, redis_server):
    rc = redis_server.client()
    for i in range(50):
        rc.xadd(RESULTS, {"job_id": f"old-{i}", "outcome": "created"})
    for i in range(30):
        rc.xadd(EVENTS_DEAD, {"dead_original_id": f"old-{i}"})
        rc.xadd(REQUESTS_DEAD, {"dead_original_id": f"old-{i}"})
    w = start_worker(workers, redis_server, env={
        "WORKER_RESULTS_MAX_ENTRIES": 20, "WORKER_DEAD_MAX_ENTRIES": 5, "WORKER_MAX_DELIVERIES": 1})

    poison = add_order_event(rc, "not-a-number")  # retried, then dead-lettered
    job = add_job(rc, "not-a-number", 1)            # rejected at once: a result
    wait_for(lambda: any(f.get("dead_original_id") == poison
                         for _, f in rc.xrange(EVENTS_DEAD, "-", "+")), scaled(20),
             message="the poison event dead-lettered")
    wait_for(lambda: any(f.get("job_id") == job for _, f in rc.xrange(RESULTS, "-", "+")),
             scaled(20), message="the rejected job's result")

    def capped():
        return rc.xlen(RESULTS) == 20 and rc.xlen(EVENTS_DEAD) == 5 and rc.xlen(REQUESTS_DEAD) == 5

    wait_for(capped, scaled(15), message="order-results at 20 entries, the dead letters at 5")
    # the newest stay
    assert rc.xrevrange(EVENTS_DEAD, "+", "-", count=1)[0][1]["dead_original_id"] == poison
    assert any(f.get("job_id") == job for _, f in rc.xrange(RESULTS, "-", "+"))
    assert [f["dead_original_id"] for _, f in rc.xrange(REQUESTS_DEAD, "-", "+")] == \
        [f"old-{i}" for i in range(25, 30)]

    def lengths_shown():
        samples = scrape_worker(w)
        return (series(samples, "bookstore_stream_length", stream=RESULTS) == [20]
                and series(samples, "bookstore_stream_length", stream=EVENTS_DEAD) == [5]
                and series(samples, "bookstore_stream_length", stream=REQUESTS_DEAD) == [5])

    wait_for(lengths_shown, scaled(15), message="the capped lengths in the metrics")
    samples = scrape_worker(w)
    assert gauge(samples, "bookstore_stream_trimmed_total", stream=RESULTS) >= 30
    assert gauge(samples, "bookstore_stream_trimmed_total", stream=REQUESTS_DEAD) == 25
