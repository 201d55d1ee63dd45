"""bookstore-orders on several event loops (ORDERS_THREADS): every loop
serves orders, a scrape sums them, the loops share one circuit breaker to
Books, an order taken on any loop is published at once by the relay on the
main loop, and bad values are configuration errors.

Real PostgreSQL, Redis, Books and Orders; nothing is timed but the relay's
tick, which is set far beyond the test's deadlines."""

import concurrent.futures

import pytest
import requests

from harness import EX_CONFIG, ServicePair, assert_status, metric_value, scaled, scrape, wait_for
from redis_server import RedisServer
from test_event_loops import threads_of

EVENTS = "bookstore:orders:events"


def wakeups_of(pid):
    """{thread name: voluntary context switches}: a loop that served
    requests woke for them (CPU ticks are too coarse for fast 503s)."""
    out = {}
    for name, (tid, _) in threads_of(pid).items():
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        out[name] = int(line.split()[1])
        except FileNotFoundError:
            continue
    return out


@pytest.fixture
def redis_srv():
    with RedisServer("loops") as server:
        yield server
        server.assert_no_denials()


def post_orders(pair, book_ids, connections):
    """POST an order for each of `book_ids` over `connections` keep-alive
    clients (each accepted by whichever loop comes first); the statuses."""
    def one(chunk):
        codes = []
        with requests.Session() as s:
            for book_id in chunk:
                resp = s.post(pair.orders.url("/v1/orders"), json={"book_id": book_id, "quantity": 1},
                              timeout=scaled(10))
                codes.append(resp.status_code)
        return codes

    chunks = [book_ids[i::connections] for i in range(connections)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=connections) as pool:
        return [c for codes in pool.map(one, chunks) for c in codes]


def test_every_loop_takes_orders(odaemons, redis_srv):
    pair = ServicePair(odaemons, orders_env={**redis_srv.env("orders"), "ORDERS_THREADS": "3",
                                             "ORDERS_DB_POOL_SIZE": "5"})
    names = threads_of(pair.orders.pid)
    assert {"loop-1", "loop-2"} <= set(names), f"threads: {sorted(names)}"
    book = pair.books_api.create_book(title="for every loop")
    before = threads_of(pair.orders.pid)

    codes = post_orders(pair, [book["id"]] * 240, connections=24)
    assert codes == [201] * 240, sorted(set(codes))

    after = threads_of(pair.orders.pid)
    busy = [n for n in ("loop-1", "loop-2") if after[n][1] > before[n][1]]
    assert busy, f"240 orders over 24 connections never ran on loop-1 or loop-2: {before} -> {after}"
    # every loop's counts in one series; the pool shared out (2 + 2 + 1)
    samples = scrape(pair.orders)
    assert metric_value(samples, "orders_created_total") == 240
    assert metric_value(samples, "db_pool_max_connections") == 5
    stored = pair.orders_manager.cluster.psql("SELECT count(*) FROM orders", db=pair.orders_db)
    assert int(stored.strip()) == 240


def test_the_loops_share_one_circuit_breaker(odaemons, redis_srv):
    """Books gone: the circuit opens after BOOKS_CIRCUIT_FAILURE_THRESHOLD
    failed calls in all, not that many per loop. The orders go one at a time
    (so that no call is in flight when the circuit opens) over 12 keep-alive
    connections opened together, which the loops accepted between them."""
    pair = ServicePair(odaemons, orders_env={**redis_srv.env("orders"), "ORDERS_THREADS": "3",
                                             "BOOKS_CIRCUIT_FAILURE_THRESHOLD": "3",
                                             "BOOKS_CIRCUIT_COOLDOWN_MS": "600000"})
    book = pair.books_api.create_book(title="circuit")
    pair.api.create_order(book["id"], 1)
    sessions = [requests.Session() for _ in range(12)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        for resp in pool.map(lambda s: s.get(pair.orders.url("/livez"), timeout=scaled(10)), sessions):
            assert_status(resp, 200)
    pair.books.stop()

    before = wakeups_of(pair.orders.pid)
    codes = []
    for i in range(36):
        resp = sessions[i % 12].post(pair.orders.url("/v1/orders"),
                                     json={"book_id": book["id"], "quantity": 1}, timeout=scaled(10))
        codes.append(resp.status_code)
    after = wakeups_of(pair.orders.pid)
    for s in sessions:
        s.close()

    assert set(codes) == {503}, codes
    main = next(n for n, (tid, _) in threads_of(pair.orders.pid).items() if tid == pair.orders.pid)
    busy = [n for n in ("loop-1", "loop-2", main) if after[n] - before[n] >= 5]
    assert len(busy) >= 2, f"the orders woke only {busy}: {before} -> {after}"
    samples = scrape(pair.orders)
    assert metric_value(samples, "books_circuit_opens_total") == 1
    assert metric_value(samples, "books_circuit_state") == 1  # open
    failed = metric_value(samples, "books_requests_total", result="connection_error")
    rejected = metric_value(samples, "books_requests_total", result="rejected")
    assert failed == 3, f"{failed} calls failed before the circuit opened (threshold 3, one circuit)"
    assert rejected == 33, f"{rejected} of the other 33 orders refused by the open circuit"


def test_orders_from_every_loop_are_published_at_once(odaemons, redis_srv):
    """The relay runs on the main loop; an order taken on another loop kicks
    it across threads, so its event goes out now, not at the next tick."""
    pair = ServicePair(odaemons, orders_env={**redis_srv.env("orders"), "ORDERS_THREADS": "3",
                                             "ORDERS_RELAY_INTERVAL_MS": "600000"})
    book = pair.books_api.create_book(title="published")
    r = redis_srv.client()
    wait_for(lambda: metric_value(scrape(pair.orders), "redis_connected", connection="orders-relay") == 1,
             scaled(15), message="the relay connected to Redis")

    codes = post_orders(pair, [book["id"]] * 30, connections=12)
    assert codes == [201] * 30, codes
    wait_for(lambda: r.xlen(EVENTS) == 30, scaled(15),
             message="30 events published long before the relay's 10-minute tick")


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_bad_thread_counts_are_configuration_errors(odaemons, pg, value):
    env = odaemons.env_for_orders(pg.dsn_uri(pg.new_db()), "http://127.0.0.1:9",
                                  extra={"ORDERS_THREADS": value})
    d = odaemons.spawn(env, port=None, kind="orders")
    rc = d.wait(scaled(10))
    assert rc == EX_CONFIG, f"ORDERS_THREADS={value}: exit {rc}\n{d.stderr_text()}"
    assert "ORDERS_THREADS" in d.stderr_text() + d.stdout_text()
