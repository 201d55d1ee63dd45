"""bookstore-orders and Redis (docs/events.md): the transactional outbox and
its relay to bookstore:orders:events, and the consumer of
bookstore:orders:status that moves orders along
pending -> processing -> completed|failed.

Real Redis (RedisServer), real PostgreSQL, the real Books and Orders daemons.
The test plays the worker: it reads the events and XADDs status entries.
Nothing is timed: every wait is a wait_for with a generous deadline."""

import concurrent.futures
import signal
import threading
import time

import pytest
import requests

from harness import (EX_CONFIG, REPO_ROOT, DaemonManager, OrdersApi, PgCluster, ServicePair,
                     assert_status, free_port, metric_value, parse_ts, scaled, scrape, wait_for)
from redis_server import RedisServer

EVENTS = "bookstore:orders:events"
STATUS = "bookstore:orders:status"
GROUP = "bookstore-orders"
EVENT_FIELDS = {"type", "outbox_id", "order_id", "book_id", "book_title", "book_author", "quantity",
                "unit_price", "total_price", "created_at", "traceparent"}
# quick ticks and claims, so that nothing waits long
FAST_ENV = {"ORDERS_RELAY_INTERVAL_MS": 200, "ORDERS_CLAIM_IDLE_MS": 1000}
WAIT = scaled(15)


# --------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture
def redis_srv():
    """A Redis for one test (requested before the daemons, so it outlives them)."""
    with RedisServer("events") as server:
        yield server
        server.assert_no_denials()


def start_pair(manager, redis_server, orders_manager=None, **env):
    return ServicePair(manager, orders_manager,
                       orders_env={**redis_server.env("orders"), **FAST_ENV, **env})


@pytest.fixture
def epair(redis_srv, odaemons):
    """Books + Orders on fresh databases, Orders on the test's Redis."""
    return start_pair(odaemons, redis_srv)


def psql(pair, sql):
    return pair.orders_manager.cluster.psql(sql, db=pair.orders_db).strip()


def events(r):
    """[(entry id, fields)] of the events stream."""
    return r.xrange(EVENTS, "-", "+")


def event_counts(r):
    counts = {}
    for _, fields in events(r):
        counts[int(fields["order_id"])] = counts.get(int(fields["order_id"]), 0) + 1
    return counts


def metrics(pair):
    return scrape(pair.orders)


class PairView:
    """Another Orders daemon, seen through the helpers that take a pair."""

    def __init__(self, orders):
        self.orders = orders


def updates(pair, result):
    return metric_value(metrics(pair), "orders_status_updates_total", result=result)


def publish_status(r, order_id, status, reason=None, **extra):
    fields = {"order_id": str(order_id), "status": status, "event_id": "1-0", "worker": "test"}
    if reason is not None:
        fields["reason"] = reason
    fields.update(extra)
    return r.xadd(STATUS, fields)


def order_status(pair, order_id):
    resp = pair.api.get(f"/v1/orders/{order_id}")
    assert_status(resp, 200)
    return resp.json()["status"]


def wait_status(pair, order_id, status):
    wait_for(lambda: order_status(pair, order_id) == status, WAIT,
             message=f"order {order_id} to be {status}")


def history(pair, order_id):
    out = psql(pair, "SELECT status || '|' || coalesce(reason, '') FROM order_status_history "
                     f"WHERE order_id = {int(order_id)} ORDER BY id")
    return [tuple(line.split("|", 1)) for line in out.splitlines() if line]


def group_pending(r):
    try:
        return r.xpending(STATUS, GROUP)["pending"]
    except Exception:  # noqa: BLE001 - no stream or group yet
        return None


def health(pair):
    resp = pair.api.get("/health")
    return resp.status_code, resp.json()


def wait_all_published(pair, r, order_ids, timeout=WAIT):
    wait_for(lambda: set(order_ids) <= set(event_counts(r)), timeout,
             message=f"events of all {len(order_ids)} orders on {EVENTS}")
    # the rows themselves first: a freshly restarted Orders exports the gauge
    # as 0 until its relay's first run has counted them, and rows a killed
    # relay had claimed stay unsent until their lease ends
    wait_for(lambda: psql(pair, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == "0",
             timeout, message="every outbox row marked sent")
    wait_for(lambda: metric_value(metrics(pair), "orders_outbox_pending") == 0, timeout,
             message="orders_outbox_pending back to 0")


# --------------------------------------------------------------------------
# the outbox and its relay


def test_an_order_publishes_one_event_with_its_snapshot(epair, redis_srv):
    r = redis_srv.client()
    book = epair.books_api.create_book(title="Événements", author="Ann O'Hara", price="12.50")
    order = epair.api.order(book["id"], 3)
    assert order["status"] == "pending"

    wait_for(lambda: len(events(r)) == 1, WAIT, message="one event")
    wait_for(lambda: psql(epair, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == "0", WAIT,
             message="the outbox row marked sent")
    (entry_id, fields), = events(r)
    assert set(fields) == EVENT_FIELDS, fields
    assert fields["type"] == "order.created"
    assert fields["order_id"] == str(order["id"])
    assert fields["outbox_id"] == psql(epair, f"SELECT id FROM outbox WHERE order_id = {order['id']}")
    assert fields["book_id"] == str(book["id"])
    assert fields["book_title"] == "Événements"
    assert fields["book_author"] == "Ann O'Hara"
    assert fields["quantity"] == "3"
    assert fields["unit_price"] == "12.50"  # exact decimal strings, never floats
    assert fields["total_price"] == "37.50"
    assert parse_ts(fields["created_at"]) == parse_ts(order["created_at"])

    # an idempotent replay creates no order, hence no event
    first = epair.api.create_order(book["id"], 1, key="events-key-1").json()
    replay = epair.api.create_order(book["id"], 1, key="events-key-1")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    wait_for(lambda: len(events(r)) == 2, WAIT, message="the second order's event")
    assert event_counts(r) == {order["id"]: 1, first["id"]: 1}
    assert psql(epair, "SELECT count(*) FROM outbox") == "2"
    samples = metrics(epair)
    assert metric_value(samples, "orders_outbox_published_total") == 2
    assert metric_value(samples, "orders_outbox_publish_failures_total") == 0


def test_redis_stopped_orders_still_accepted_and_caught_up(epair, redis_srv):
    api = epair.api
    book = epair.books_api.create_book(title="Outage", price="1.10")
    before = api.order(book["id"], 1)
    wait_all_published(epair, redis_srv.client(), [before["id"]])

    redis_srv.stop()
    wait_for(lambda: health(epair)[1]["services"]["redis"] == "unhealthy", WAIT,
             message="/health to report Redis down")
    code, body = health(epair)
    assert code == 200 and body["status"] == "healthy", body  # Redis down: orders still taken
    ids = [api.order(book["id"], 1 + i % 4)["id"] for i in range(25)]
    wait_for(lambda: metric_value(metrics(epair), "orders_outbox_pending") == 25, WAIT,
             message="orders_outbox_pending to count the 25 unsent events")
    assert metric_value(metrics(epair), "redis_connected", connection="orders-relay") == 0

    redis_srv.start()  # same port, empty
    r = redis_srv.client()
    wait_all_published(epair, r, ids)
    counts = event_counts(r)
    assert all(counts[i] >= 1 for i in ids), counts
    assert before["id"] not in counts, "an event already published was published again"
    wait_for(lambda: health(epair)[1]["services"]["redis"] == "healthy", WAIT,
             message="/health to report Redis up")


def test_redis_not_running_when_orders_starts(odaemons):
    server = RedisServer("late")
    try:
        server.port = free_port()  # where it will be
        pair = start_pair(odaemons, server)
        code, body = health(pair)
        assert code == 200 and body["services"]["redis"] == "unhealthy", body
        book = pair.books_api.create_book(title="Early", price="3.00")
        ids = [pair.api.order(book["id"], 1)["id"] for _ in range(10)]
        wait_for(lambda: metric_value(metrics(pair), "orders_outbox_pending") == 10, WAIT,
                 message="10 unsent events counted")

        server.start()
        r = server.client()
        wait_all_published(pair, r, ids)
        # the status consumer made its group on the new Redis and works
        publish_status(r, ids[0], "completed")
        wait_status(pair, ids[0], "completed")
    finally:
        server.destroy()


def test_outbox_row_and_order_commit_together(redis_srv, odaemons):
    pair = start_pair(odaemons, redis_srv)
    api = pair.api
    book = pair.books_api.create_book(title="Atomic", price="0.99")
    stop = threading.Event()
    created = []
    lock = threading.Lock()

    def client(n):
        session = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            key = f"atomic-{n}-{i}" if i % 2 else None
            headers = {"Idempotency-Key": key} if key else {}
            try:
                resp = session.post(api.url("/v1/orders"), json={"book_id": book["id"], "quantity": 1},
                                    headers=headers, timeout=scaled(5))
                order_id = resp.json()["id"] if resp.status_code == 201 else None
            except (requests.RequestException, ValueError):  # cut off by the kill
                time.sleep(0.05)
                continue
            if order_id is not None:
                with lock:
                    created.append(order_id)

    def unmatched():
        return psql(pair, "SELECT count(*) FROM orders o WHERE "
                          "(SELECT count(*) FROM outbox x WHERE x.order_id = o.id) <> 1")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(created) >= 40, WAIT, message="40 orders created concurrently")
        # one snapshot sees an order and its outbox row together, or neither
        for _ in range(5):
            same = psql(pair, "SELECT (SELECT count(*) FROM orders) || '=' || (SELECT count(*) FROM outbox)")
            a, b = same.split("=")
            assert a == b, same
            assert unmatched() == "0"
        pair.orders.kill()  # SIGKILL under load
    finally:
        stop.set()
        for t in threads:
            t.join(scaled(10))
    assert pair.orders.returncode == -signal.SIGKILL
    # whatever the kill cut off, no order lacks its event and no event its order
    assert unmatched() == "0"
    assert psql(pair, "SELECT count(*) FROM outbox x WHERE NOT EXISTS "
                      "(SELECT 1 FROM orders o WHERE o.id = x.order_id)") == "0"

    pair.restart_orders()
    all_ids = [int(x) for x in psql(pair, "SELECT id FROM orders").split()]
    assert set(created) <= set(all_ids)
    # rows the killed relay held are published once their 10 s lease ends
    wait_all_published(pair, redis_srv.client(), all_ids, timeout=scaled(40))


def test_two_instances_share_the_outbox_and_the_status_stream(redis_srv, odaemons):
    """Two Orders processes on one database and one Redis: every event is
    published once, every status entry applied once."""
    pair = start_pair(odaemons, redis_srv, ORDERS_CONSUMER_NAME="orders-a")
    second = odaemons.start_orders(books=pair.books, db=pair.orders_db,
                                   env={**redis_srv.env("orders"), **FAST_ENV, "ORDERS_CONSUMER_NAME": "orders-b"})
    apis = [pair.api, OrdersApi(second.url())]
    book = pair.books_api.create_book(title="Twins", price="2.20")
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: apis[i % 2].order(book["id"], 1)["id"], range(60)))
    r = redis_srv.client()
    wait_all_published(pair, r, ids)
    counts = event_counts(r)
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}, counts

    for i in ids:
        publish_status(r, i, "processing")
        publish_status(r, i, "completed")
    wait_for(lambda: psql(pair, "SELECT count(*) FROM orders WHERE status = 'completed'") == "60", WAIT,
             message="60 orders completed")
    wait_for(lambda: group_pending(r) == 0, WAIT, message="every status entry acknowledged")
    # the two consumers may apply an order's "completed" before its
    # "processing" (then ignored as late): one completion each, whatever the order
    assert psql(pair, "SELECT count(*) FROM order_status_history WHERE status = 'completed'") == "60"
    assert psql(pair, "SELECT count(DISTINCT order_id) FROM order_status_history "
                      "WHERE status = 'completed'") == "60"
    handled = sum(updates(p, result) for p in (pair, PairView(second)) for result in ("applied", "ignored"))
    assert handled == 120
    consumers = {c["name"] for c in r.xinfo_consumers(STATUS, GROUP)}
    assert {"orders-a", "orders-b"} <= consumers, consumers


# --------------------------------------------------------------------------
# status changes from the worker


def test_status_transitions_are_applied_once(epair, redis_srv):
    r = redis_srv.client()
    book = epair.books_api.create_book(title="Lifecycle", price="5.00")
    order = epair.api.order(book["id"], 1)

    publish_status(r, order["id"], "processing")
    wait_status(epair, order["id"], "processing")
    publish_status(r, order["id"], "completed")
    wait_status(epair, order["id"], "completed")

    ignored = updates(epair, "ignored")
    publish_status(r, order["id"], "completed")  # repeated
    publish_status(r, order["id"], "processing")  # late
    publish_status(r, order["id"], "failed", reason="too late")  # after the end
    wait_for(lambda: updates(epair, "ignored") == ignored + 3, WAIT, message="3 ignored updates")
    got = epair.api.get(f"/v1/orders/{order['id']}").json()
    assert got["status"] == "completed" and "status_reason" not in got, got
    assert history(epair, order["id"]) == [("processing", ""), ("completed", "")]

    # failed, with its reason; straight from pending
    failed = epair.api.order(book["id"], 2)
    publish_status(r, failed["id"], "failed", reason="insufficient stock: 2 requested")
    wait_status(epair, failed["id"], "failed")
    got = epair.api.get(f"/v1/orders/{failed['id']}").json()
    assert got["status_reason"] == "insufficient stock: 2 requested", got
    assert history(epair, failed["id"]) == [("failed", "insufficient stock: 2 requested")]
    listed = [o for o in epair.api.get("/v1/orders").json() if o["id"] == failed["id"]]
    assert listed == [got]

    # pending -> completed directly
    direct = epair.api.order(book["id"], 1)
    publish_status(r, direct["id"], "completed")
    wait_status(epair, direct["id"], "completed")
    assert history(epair, direct["id"]) == [("completed", "")]
    assert updates(epair, "applied") == 4

    wait_for(lambda: group_pending(r) == 0, WAIT, message="every status entry acknowledged")
    epair.orders.wait_for_log(lambda rec: rec.get("ORDER_ID") == str(order["id"])
                              and rec.get("ORDER_STATUS") == "completed", WAIT,
                              message="a record with ORDER_ID and the new status")


def test_invalid_status_messages_are_acknowledged_and_counted(epair, redis_srv):
    r = redis_srv.client()
    book = epair.books_api.create_book(title="Garbage in", price="2.00")
    order = epair.api.order(book["id"], 1)
    bad = [
        {"status": "completed"},  # no order_id
        {"order_id": "abc", "status": "completed"},
        {"order_id": "-1", "status": "completed"},
        {"order_id": "1.5", "status": "completed"},
        {"order_id": " 1", "status": "completed"},
        {"order_id": "99999999999999999999999", "status": "completed"},
        {"order_id": str(order["id"]), "status": "shipped"},
        {"order_id": str(order["id"])},  # no status
        {"order_id": "999999999", "status": "completed"},  # no such order
        {"order_id": str(order["id"]), "status": "failed", "reason": "\udcff".encode("utf-8", "surrogatepass")},
    ]
    # the last one is valid apart from its reason (not UTF-8): applied, reason repaired
    for fields in bad:
        r.xadd(STATUS, fields)
    publish_status(r, order["id"], "processing")  # late after failed: ignored

    wait_for(lambda: updates(epair, "invalid") == len(bad) - 1, WAIT,
             message=f"{len(bad) - 1} invalid updates")
    wait_for(lambda: group_pending(r) == 0, WAIT, message="invalid entries acknowledged too")
    wait_status(epair, order["id"], "failed")
    assert updates(epair, "ignored") == 1
    got = epair.api.get(f"/v1/orders/{order['id']}").json()
    assert isinstance(got["status_reason"], str), got

    # the consumer keeps going
    other = epair.api.order(book["id"], 1)
    publish_status(r, other["id"], "completed")
    wait_status(epair, other["id"], "completed")
    warnings = [rec for rec in epair.orders.log_records() if rec.get("REDIS_ENTRY_ID")
                and rec.get("LEVEL") == "warning"]
    assert len(warnings) == len(bad) - 1, warnings


@pytest.fixture(scope="module")
def own_pg():
    with PgCluster("orders-events") as cluster:
        yield cluster


def test_status_messages_wait_for_postgres(redis_srv, odaemons, own_pg, tmp_path):
    (tmp_path / "orders").mkdir(exist_ok=True)
    if not own_pg.is_running():
        own_pg.start()
    with DaemonManager(own_pg, tmp_path / "orders") as omanager:
        pair = start_pair(odaemons, redis_srv, omanager)
        r = redis_srv.client()
        book = pair.books_api.create_book(title="Patience", price="4.00")
        order = pair.api.order(book["id"], 1)
        wait_for(lambda: group_pending(r) == 0, WAIT, message="the group to exist")

        own_pg.stop()
        try:
            trace = "4bf92f3577b34da6a3ce929d0e0e4736"
            publish_status(r, order["id"], "processing",
                           traceparent=f"00-{trace}-00f067aa0ba902b7-01")
            publish_status(r, order["id"], "completed")
            # delivered to orders, not applied, so not acknowledged; read again
            # and again, while the one after it waits in the stream
            wait_for(lambda: group_pending(r) == 1, WAIT, message="the first entry pending")
            rec, = pair.orders.wait_for_log(lambda rec: "stays pending" in rec.get("MESSAGE", ""), WAIT)
            assert rec.get("TRACE_ID") == trace, rec  # logged in the entry's trace
            assert updates(pair, "applied") == 0
            assert group_pending(r) == 1
        finally:
            own_pg.start()
        wait_status(pair, order["id"], "completed")
        wait_for(lambda: group_pending(r) == 0, WAIT, message="the entries acknowledged")
        assert history(pair, order["id"]) == [("processing", ""), ("completed", "")]


def test_entries_published_while_orders_was_down_are_applied(epair, redis_srv):
    r = redis_srv.client()
    book = epair.books_api.create_book(title="Later", price="6.00")
    order = epair.api.order(book["id"], 1)
    wait_for(lambda: group_pending(r) == 0, WAIT, message="the group to exist")

    assert epair.orders.stop() == 0
    publish_status(r, order["id"], "processing")
    publish_status(r, order["id"], "completed")
    epair.restart_orders()
    wait_status(epair, order["id"], "completed")
    assert history(epair, order["id"]) == [("processing", ""), ("completed", "")]


def test_entries_left_by_a_dead_consumer_are_claimed(epair, redis_srv):
    r = redis_srv.client()
    book = epair.books_api.create_book(title="Orphan", price="7.00")
    order = epair.api.order(book["id"], 1)
    wait_for(lambda: group_pending(r) == 0, WAIT, message="the group to exist")

    # "ghost", a consumer of the group that dies holding the entry: it reads
    # it while Orders is down, and never acknowledges it
    assert epair.orders.stop() == 0
    publish_status(r, order["id"], "completed")
    got = r.xreadgroup(GROUP, "ghost", {STATUS: ">"}, count=10)
    assert got and len(got[0][1]) == 1, got
    assert group_pending(r) == 1
    epair.restart_orders()
    # ORDERS_CLAIM_IDLE_MS=1000: orders takes it over and applies it
    wait_status(epair, order["id"], "completed")
    wait_for(lambda: group_pending(r) == 0, WAIT, message="the claimed entry acknowledged")


def test_redis_killed_and_restarted_under_orders(epair, redis_srv):
    r = redis_srv.client()
    api = epair.api
    book = epair.books_api.create_book(title="Phoenix", price="8.00")
    wait_for(lambda: health(epair)[1]["services"]["redis"] == "healthy", WAIT, message="Redis healthy")
    samples = metrics(epair)
    assert metric_value(samples, "redis_connected", connection="orders-relay") == 1
    assert metric_value(samples, "redis_connected", connection="orders-status") == 1

    redis_srv.kill()
    wait_for(lambda: health(epair)[1]["services"]["redis"] == "unhealthy", WAIT,
             message="/health to report Redis down")
    code, body = health(epair)
    assert code == 200 and body["status"] == "healthy", body
    wait_for(lambda: metric_value(metrics(epair), "redis_connected", connection="orders-status") == 0,
             WAIT, message="redis_connected{orders-status} 0")
    during = api.order(book["id"], 1)

    redis_srv.start()
    r = redis_srv.client()
    wait_for(lambda: health(epair)[1]["services"]["redis"] == "healthy", WAIT, message="Redis back")
    after = api.order(book["id"], 1)
    wait_all_published(epair, r, [during["id"], after["id"]])
    publish_status(r, during["id"], "processing")
    publish_status(r, after["id"], "failed", reason="payment declined")
    wait_status(epair, during["id"], "processing")
    wait_status(epair, after["id"], "failed")
    assert epair.orders.alive()


# --------------------------------------------------------------------------
# metrics


def test_event_metrics_are_exported(epair, redis_srv):
    samples = metrics(epair)
    names = {n for n, _, _ in samples}
    for name in ("orders_outbox_pending", "orders_outbox_oldest_pending_seconds",
                 "orders_outbox_published_total", "orders_outbox_publish_failures_total",
                 "redis_connected", "orders_status_updates_total"):
        assert name in names, f"{name} missing from /metrics"
    for result in ("applied", "ignored", "invalid"):
        assert [v for n, l, v in samples
                if n == "orders_status_updates_total" and l.get("result") == result] == [0.0]
    text = requests.get(epair.orders.url("/metrics"), timeout=5).text
    assert text.count("# TYPE redis_connected gauge") == 1, "one family for both connections"

    r = redis_srv.client()
    book = epair.books_api.create_book(title="Counted", price="1.00")
    ids = [epair.api.order(book["id"], 1)["id"] for _ in range(3)]
    wait_all_published(epair, r, ids)
    publish_status(r, ids[0], "completed")
    publish_status(r, ids[0], "completed")
    publish_status(r, "nope", "completed")
    wait_for(lambda: (updates(epair, "applied"), updates(epair, "ignored"), updates(epair, "invalid"))
             == (1, 1, 1), WAIT, message="one applied, one ignored, one invalid")
    samples = metrics(epair)
    assert metric_value(samples, "orders_outbox_published_total") == 3
    assert metric_value(samples, "orders_outbox_oldest_pending_seconds") == 0


# --------------------------------------------------------------------------
# the migration from the schema before events


def test_orders_taken_before_the_migration_get_their_events(redis_srv, odaemons, pg):
    """A database at 0001 with orders in it: 0002 gives the pending ones an
    event (published once Orders runs), and the others none."""
    db = pg.new_db()
    sql = (REPO_ROOT / "data" / "sql" / "orders" / "0001_create_orders.sql").read_text()
    pg.psql(sql, db=db)
    pg.psql("CREATE TABLE schema_migrations (version text PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now()); "
            "INSERT INTO schema_migrations (version) VALUES ('0001_create_orders'); "
            "INSERT INTO orders (book_id, book_title, book_author, quantity, unit_price, total_price, status) "
            "VALUES (1, 'Old', 'A', 2, 1.25, 2.50, 'pending'), (1, 'Old', 'A', 1, 1.25, 1.25, 'completed'), "
            "(2, 'Older', 'B', 3, 0.10, 0.30, 'pending')", db=db)
    pair = ServicePair(odaemons, orders_db=db, orders_env={**redis_srv.env("orders"), **FAST_ENV})
    r = redis_srv.client()
    wait_all_published(pair, r, [1, 3])
    assert event_counts(r) == {1: 1, 3: 1}
    fields = {int(f["order_id"]): f for _, f in events(r)}
    assert (fields[3]["unit_price"], fields[3]["total_price"], fields[3]["quantity"]) == ("0.10", "0.30", "3")
    assert pg.psql("SELECT version FROM schema_migrations ORDER BY 1", db=db).split() == [
        "0001_create_orders", "0002_order_events", "0003_outbox_trace"]
    # events of orders from before the trace context have no traceparent field
    assert all("traceparent" not in f for _, f in events(r))
    publish_status(r, 3, "completed")
    wait_status(pair, 3, "completed")


# --------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("variable,value", [
    ("ORDERS_RELAY_INTERVAL_MS", "abc"),
    ("ORDERS_RELAY_INTERVAL_MS", "9"),
    ("ORDERS_RELAY_INTERVAL_MS", "600001"),
    ("ORDERS_CLAIM_IDLE_MS", "-1"),
    ("ORDERS_CLAIM_IDLE_MS", "99"),
    ("ORDERS_CONSUMER_NAME", "two words"),
    ("ORDERS_CONSUMER_NAME", "x" * 201),
])
def test_invalid_event_config_exits_78(odaemons, pg, variable, value):
    env = odaemons.env_for_orders(pg.dsn_uri("postgres"), f"http://127.0.0.1:{free_port()}", free_port(),
                                  {variable: value})
    d = odaemons.spawn(env, kind="orders")
    rc = d.wait(scaled(10))
    assert rc == EX_CONFIG, f"{variable}={value!r}: exit status {rc}\n{d.log_tail()}"
    assert variable in d.stderr_text(), d.log_tail()
