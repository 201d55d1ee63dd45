"""bookstore-orders when its dependencies fail: Books stopped, killed, slow,
erroring or talking nonsense (the circuit breaker: open, fast 503s with
Retry-After, one half-open probe, recovery on its own), Orders itself killed
under load (nothing acknowledged is lost), PostgreSQL restarted under it.

Every test starts its own Books+Orders pair with short breaker settings;
waits and timing bounds are scaled for slow runs (valgrind)."""

import concurrent.futures
import math
import os
import signal
import threading
import time
import uuid

import pytest
import requests

from harness import (BooksStub, DaemonManager, OrdersApi, PgCluster, ServicePair, assert_error,
                     assert_json_content_type, assert_order_shape, assert_status, describe, free_port,
                     metric_value, raw_money, scaled, scrape, time_scale, wait_for)

SCALE = time_scale()
TIMEOUT_MS = int(500 * SCALE)
COOLDOWN_MS = int(1000 * SCALE)
THRESHOLD = 3
TIMEOUT_S = TIMEOUT_MS / 1000
COOLDOWN_S = COOLDOWN_MS / 1000
SHORT = {"BOOKS_TIMEOUT_MS": TIMEOUT_MS, "BOOKS_CIRCUIT_FAILURE_THRESHOLD": THRESHOLD,
         "BOOKS_CIRCUIT_COOLDOWN_MS": COOLDOWN_MS}
HEALTH_BOUND = scaled(2.5)  # /health must answer within ~2 s whatever the dependencies do
FAST = max(0.25, TIMEOUT_S * 0.5)  # an open circuit answers without waiting for Books

HEALTHY = {"status": "healthy", "services": {"database": "healthy", "books": "healthy"}}
BOOKS_DOWN = {"status": "unhealthy", "services": {"database": "healthy", "books": "unhealthy"}}
DB_DOWN = {"status": "unhealthy", "services": {"database": "unhealthy", "books": "healthy"}}
FAILURE_RESULTS = ("server_error", "timeout", "connection_error", "invalid_response")


def without_redis(body):
    """A /health body without services.redis: reported, but it never makes
    Orders unhealthy (test_orders_events.py covers it)."""
    body.get("services", {}).pop("redis", None)
    return body


def timed_post(api, book_id, quantity=1, key=None, timeout=None):
    headers = {"Idempotency-Key": key} if key else {}
    t = time.monotonic()
    resp = requests.post(api.url("/v1/orders"), json={"book_id": book_id, "quantity": quantity},
                         headers=headers, timeout=timeout or (TIMEOUT_S + scaled(10)))
    return resp, time.monotonic() - t


def assert_503_with_retry_after(resp, max_retry_after=None):
    assert_error(resp, 503, "SERVICE_UNAVAILABLE")
    ra = resp.headers.get("Retry-After", "")
    assert ra.strip().isdigit() and int(ra) >= 1, f"Retry-After must be a number of seconds >= 1{describe(resp)}"
    if max_retry_after is not None:
        assert int(ra) <= max_retry_after, f"Retry-After {ra} > {max_retry_after}{describe(resp)}"
    return int(ra)


def books_results(daemon):
    samples = scrape(daemon)
    return {l["result"]: v for n, l, v in samples if n == "books_requests_total" and "result" in l}, samples


def delta(after, before, key):
    return after.get(key, 0) - before.get(key, 0)


def circuit_state(daemon):
    return metric_value(scrape(daemon), "books_circuit_state")


def opens_total(daemon):
    return metric_value(scrape(daemon), "books_circuit_opens_total")


def circuit_messages(daemon):
    return [r.get("MESSAGE", "").lower() for r in daemon.log_records() if "circuit" in r.get("MESSAGE", "").lower()]


def wait_circuit_log(daemon, word, after=0):
    """A circuit log record (beyond the first `after` ones) naming `word`."""
    def found():
        msgs = circuit_messages(daemon)[after:]
        return [m for m in msgs if word in m]
    return wait_for(found, scaled(3), message=f"a log record about the circuit mentioning {word!r}\n"
                                              f"{daemon.log_tail()}")


def get_health(daemon):
    t = time.monotonic()
    resp = requests.get(daemon.url("/health"), timeout=HEALTH_BOUND + scaled(5))
    took = time.monotonic() - t
    assert took <= HEALTH_BOUND, f"/health took {took:.2f}s (> {HEALTH_BOUND}s){describe(resp)}"
    return resp


def wait_health(daemon, want_status, within):
    t0 = time.monotonic()
    seen = []
    while True:
        resp = get_health(daemon)
        seen.append(resp.status_code)
        if resp.status_code == want_status:
            assert_json_content_type(resp)
            return resp
        assert resp.status_code in (200, 503), describe(resp)
        if time.monotonic() - t0 > within:
            raise AssertionError(f"/health not {want_status} within {within}s; saw {seen[-10:]}{describe(resp)}\n"
                                 f"{daemon.log_tail()}")
        time.sleep(0.1)


def wait_order_works(api, book_id, within, daemon=None):
    """Poll POST /v1/orders until 201; only 503 is acceptable in between."""
    t0 = time.monotonic()
    while True:
        resp, _ = timed_post(api, book_id)
        if resp.status_code == 201:
            assert_order_shape(resp.json())
            return resp, time.monotonic() - t0
        assert_503_with_retry_after(resp)
        if time.monotonic() - t0 > within:
            raise AssertionError(f"orders not working again within {within}s{describe(resp)}\n"
                                 f"{daemon.log_tail() if daemon else ''}")
        time.sleep(0.1)


def trip(api, book_id, expect_status=503, expect_code="SERVICE_UNAVAILABLE", bound=None):
    """THRESHOLD failing orders, each answered within `bound` seconds."""
    bound = bound if bound is not None else TIMEOUT_S + scaled(2.5)
    for i in range(THRESHOLD):
        resp, took = timed_post(api, book_id)
        assert_error(resp, expect_status, expect_code)
        if expect_status == 503:
            assert_503_with_retry_after(resp)
        assert took < bound, f"failure {i + 1} took {took:.2f}s (bound {bound:.2f}s){describe(resp)}"


# --------------------------------------------------------------------------
# the real Books stopped and started again


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_books_stopped_circuit_opens_and_recovers(odaemons, sig):
    pair = ServicePair(odaemons, orders_env=SHORT)
    api, orders = pair.api, pair.orders
    book = pair.books_api.create_book(title="Resilient", author="R. Author", price="8.25")
    api.order(book["id"], 1)
    before, _ = books_results(orders)
    opens_before = opens_total(orders)
    assert circuit_state(orders) == 0

    if sig == signal.SIGTERM:
        assert pair.books.stop(signal.SIGTERM) == 0, pair.books.log_tail()
    else:
        pair.books.kill()

    # the threshold's worth of failures: each a 503 with Retry-After, within the timeout
    trip(api, book["id"])
    # the circuit is open: answered at once, Books not called
    for _ in range(3):
        resp, took = timed_post(api, book["id"])
        assert_503_with_retry_after(resp, max_retry_after=math.ceil(COOLDOWN_S))
        assert took < FAST, f"open circuit took {took:.2f}s to answer"
    after, samples = books_results(orders)
    failures = sum(delta(after, before, r) for r in FAILURE_RESULTS)
    assert failures >= THRESHOLD, (before, after)
    assert delta(after, before, "connection_error") >= THRESHOLD, (before, after)
    assert delta(after, before, "rejected") >= 1, (before, after)
    state = metric_value(samples, "books_circuit_state")
    assert state in (1, 2), f"books_circuit_state {state}, expected open"
    assert metric_value(samples, "books_circuit_opens_total") >= opens_before + 1
    wait_circuit_log(orders, "open")

    # /health says books is unhealthy, quickly
    resp = wait_health(orders, 503, within=scaled(5))
    assert without_redis(resp.json()) == BOOKS_DOWN, describe(resp)
    assert api.total_count() == 1
    logged = len(circuit_messages(orders))

    # Books back on the same port: orders work again by themselves after the cooldown
    pair.restart_books()
    resp, waited = wait_order_works(api, book["id"], within=COOLDOWN_S + scaled(5), daemon=orders)
    order = resp.json()
    assert (order["book_title"], order["book_author"]) == ("Resilient", "R. Author"), order
    assert raw_money(resp, "unit_price") == "8.25", describe(resp)
    assert circuit_state(orders) == 0
    wait_circuit_log(orders, "closed", after=logged)
    resp = wait_health(orders, 200, within=scaled(5))
    assert without_redis(resp.json()) == HEALTHY
    assert api.total_count() == 2
    # the pooled keep-alive connections to Books all work again
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for r, _ in pool.map(lambda _: timed_post(api, book["id"]), range(8)):
            assert_status(r, 201)


def test_orders_started_while_books_down(odaemons):
    """Orders starts with nothing listening at BOOKS_SERVICE_URL; Books appears later."""
    port = free_port()
    books_db = odaemons.cluster.new_db()
    orders = odaemons.start_orders(books_url=f"http://127.0.0.1:{port}", env=SHORT, wait="database")
    api = OrdersApi(orders.url())
    resp = wait_health(orders, 503, within=scaled(5))
    assert without_redis(resp.json()) == BOOKS_DOWN, describe(resp)
    resp, took = timed_post(api, 1)
    assert_503_with_retry_after(resp)

    books = odaemons.start(db=books_db, port=port)
    book = books.api.create_book(title="Late", price="1.25")
    resp, _ = wait_order_works(api, book["id"], within=COOLDOWN_S + scaled(5), daemon=orders)
    assert raw_money(resp, "unit_price") == "1.25"
    assert without_redis(wait_health(orders, 200, within=scaled(5)).json()) == HEALTHY


def test_books_4xx_do_not_open_the_circuit(odaemons):
    pair = ServicePair(odaemons, orders_env=SHORT)
    api, orders = pair.api, pair.orders
    book = pair.books_api.create_book(title="Present")
    gone = pair.books_api.create_book(title="Gone")
    assert_status(pair.books_api.delete(f"/v1/books/{gone['id']}"), 204)
    before, _ = books_results(orders)
    for i in range(THRESHOLD * 3):
        assert_error(requests.post(api.url("/v1/orders"), json={"book_id": 987654321 + i, "quantity": 1},
                                   timeout=scaled(5)), 404, "NOT_FOUND")
    for _ in range(THRESHOLD * 2):
        assert_error(requests.post(api.url("/v1/orders"), json={"book_id": gone["id"], "quantity": 1},
                                   timeout=scaled(5)), 409, "BOOK_NOT_ORDERABLE")
    after, samples = books_results(orders)
    assert delta(after, before, "not_found") == THRESHOLD * 3, (before, after)
    assert delta(after, before, "gone") == THRESHOLD * 2, (before, after)
    assert sum(delta(after, before, r) for r in FAILURE_RESULTS + ("rejected",)) == 0, (before, after)
    assert metric_value(samples, "books_circuit_state") == 0
    assert metric_value(samples, "books_circuit_opens_total") == 0
    api.order(book["id"], 1)
    assert not [m for m in circuit_messages(orders) if "open" in m], circuit_messages(orders)


def test_validation_errors_do_not_touch_the_breaker(odaemons):
    pair = ServicePair(odaemons, orders_env=SHORT)
    api, orders = pair.api, pair.orders
    before, _ = books_results(orders)
    pair.books.stop()
    for body in ({"book_id": 1, "quantity": 0}, {"book_id": "x", "quantity": 1}, {"quantity": 1}) * 3:
        assert_error(requests.post(api.url("/v1/orders"), json=body, timeout=scaled(5)), 400, "VALIDATION_ERROR")
    after, samples = books_results(orders)
    assert all(delta(after, before, r) == 0 for r in set(after) | set(before)), (before, after)
    assert metric_value(samples, "books_circuit_state") == 0


# --------------------------------------------------------------------------
# a fake Books: slow, failing, talking nonsense


@pytest.fixture
def stub():
    s = BooksStub()
    try:
        yield s
    finally:
        s.close()


def test_books_hangs_timeout_holds_and_circuit_opens(odaemons, stub):
    """Books accepts the connection and never answers."""
    stub.mode = "hang"
    orders = odaemons.start_orders(books_url=stub.url(), env=SHORT, wait="database")
    api = OrdersApi(orders.url())
    before, _ = books_results(orders)
    for i in range(THRESHOLD):
        resp, took = timed_post(api, 1)
        assert_503_with_retry_after(resp)
        assert took >= TIMEOUT_S * 0.8, f"503 after {took:.2f}s, before the {TIMEOUT_S}s timeout?"
        assert took < TIMEOUT_S + scaled(2.5), f"the {TIMEOUT_S}s Books timeout did not hold: {took:.2f}s"
    wait_for(lambda: circuit_state(orders) == 1, scaled(2), message="books_circuit_state 1")
    calls = stub.book_request_count()
    for _ in range(3):
        resp, took = timed_post(api, 1)
        assert_503_with_retry_after(resp, max_retry_after=math.ceil(COOLDOWN_S))
        assert took < FAST, f"open circuit took {took:.2f}s to answer"
    assert stub.book_request_count() == calls, "an open circuit must not call Books"
    after, _ = books_results(orders)
    assert delta(after, before, "timeout") == THRESHOLD, (before, after)
    assert delta(after, before, "rejected") >= 3, (before, after)
    assert opens_total(orders) == 1
    resp = get_health(orders)
    assert_status(resp, 503)
    assert without_redis(resp.json()) == BOOKS_DOWN, describe(resp)


def test_timeout_holds_for_a_call_waiting_for_a_connection(odaemons, stub):
    """BOOKS_TIMEOUT_MS covers the wait for a connection too. libsoup 3.2.3
    does not look at a cancelled message that waits for a connection until
    one frees up: here the only connection is held by Orders' own health
    check of Books (1 s), and the order must still end at its deadline."""
    stub.mode = "hang"
    timeout_s = 0.3 * SCALE
    orders = odaemons.start_orders(
        books_url=stub.url(), wait="database",
        env={"BOOKS_TIMEOUT_MS": int(timeout_s * 1000), "BOOKS_MAX_CONNECTIONS": 1,
             "BOOKS_MAX_WAITING": 4, "BOOKS_CIRCUIT_FAILURE_THRESHOLD": 100, "ORDERS_THREADS": 1})
    api = OrdersApi(orders.url())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        time.sleep(1.2 * SCALE)  # the health checks of the start-up have timed out
        checks = stub.health_requests
        health = pool.submit(get_health, orders)
        wait_for(lambda: stub.health_requests > checks, scaled(3), message="the health check at Books")
        resp, took = timed_post(api, 1)
        assert_503_with_retry_after(resp)
        assert "no answer within" in resp.json()["message"], describe(resp)
        if SCALE == 1:  # under valgrind the deadline outlasts the health check's
            assert took < 0.8, f"the order waited {took:.2f}s, for the health check's connection"
        assert_status(health.result(timeout=scaled(10)), 503)
    # the call that never got a connection is gone: nothing left in flight
    stub.mode = "ok"
    resp, _ = timed_post(api, 1)
    assert_status(resp, 201)


def test_health_answers_fast_while_books_hangs(odaemons, stub):
    """Even with a long BOOKS_TIMEOUT_MS and the circuit closed, /health gives
    up on Books after ~1 s; concurrent checks too."""
    stub.mode = "hang"
    orders = odaemons.start_orders(books_url=stub.url(), env={"BOOKS_TIMEOUT_MS": 30000}, wait="database")
    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        resps = list(pool.map(lambda _: get_health(orders), range(5)))
    for resp in resps:
        assert_status(resp, 503)
        assert without_redis(resp.json()) == BOOKS_DOWN, describe(resp)
    assert_status(requests.get(orders.url("/livez"), timeout=scaled(2)), 200)


def test_books_5xx_opens_circuit_then_recovers(odaemons, stub):
    stub.mode = "error"
    orders = odaemons.start_orders(books_url=stub.url(), env=SHORT, wait="database")
    api = OrdersApi(orders.url())
    before, _ = books_results(orders)
    trip(api, 1)
    after, _ = books_results(orders)
    assert delta(after, before, "server_error") == THRESHOLD, (before, after)
    assert circuit_state(orders) == 1
    stub.mode = "ok"
    resp, waited = wait_order_works(api, 5, within=COOLDOWN_S + scaled(5), daemon=orders)
    order = resp.json()
    assert (order["book_id"], order["book_title"], order["book_author"]) == (5, "Stub Book", "Stub Author")
    assert raw_money(resp, "unit_price") == "12.99" and raw_money(resp, "total_price") == "12.99"
    assert circuit_state(orders) == 0
    assert without_redis(wait_health(orders, 200, within=scaled(5)).json()) == HEALTHY


def test_books_garbage_is_502_and_opens_circuit(odaemons, stub):
    stub.mode = "garbage"
    orders = odaemons.start_orders(books_url=stub.url(), env=SHORT, wait="database")
    api = OrdersApi(orders.url())
    before, _ = books_results(orders)
    trip(api, 1, expect_status=502, expect_code="BAD_GATEWAY")
    after, _ = books_results(orders)
    assert delta(after, before, "invalid_response") == THRESHOLD, (before, after)
    assert circuit_state(orders) == 1
    resp, took = timed_post(api, 1)
    assert_503_with_retry_after(resp)
    assert api.total_count() == 0


def test_books_endless_answer_is_cut_off(odaemons, stub):
    """An upstream that streams 64 MiB without a Content-Length: Orders stops
    reading at 1 MiB (502, counted as invalid_response) instead of buffering
    it all, and its memory stays small."""
    stub.mode = "huge"
    orders = odaemons.start_orders(books_url=stub.url(), env={"BOOKS_TIMEOUT_MS": 30000},
                                   wait="database")
    api = OrdersApi(orders.url())
    before, _ = books_results(orders)
    resp = requests.post(api.url("/v1/orders"), json={"book_id": 1, "quantity": 1}, timeout=scaled(30))
    assert_error(resp, 502, "BAD_GATEWAY")
    assert "larger than" in resp.json()["message"], describe(resp)
    after, samples = books_results(orders)
    assert delta(after, before, "invalid_response") == 1, (before, after)
    if not os.environ.get("BOOKSTORE_DAEMON_WRAPPER"):
        rss = metric_value(samples, "process_resident_memory_bytes")
        assert 0 < rss < 48 * 1024 * 1024, f"RSS {rss} after a 64 MiB answer"
    assert api.total_count() == 0


def test_half_open_probe_failure_reopens(odaemons, stub):
    stub.mode = "error"
    orders = odaemons.start_orders(books_url=stub.url(), env=SHORT, wait="database")
    api = OrdersApi(orders.url())
    trip(api, 1)
    assert circuit_state(orders) == 1
    assert opens_total(orders) == 1
    calls = stub.book_request_count()
    time.sleep(COOLDOWN_S + 0.2 * SCALE)
    # the probe goes to Books, fails: open again for another cooldown
    resp, _ = timed_post(api, 1)
    assert_503_with_retry_after(resp)
    assert stub.book_request_count() == calls + 1, "exactly one probe after the cooldown"
    assert circuit_state(orders) == 1
    assert opens_total(orders) == 2, "re-opening after a failed probe counts as an opening"
    resp, took = timed_post(api, 1)
    assert_503_with_retry_after(resp, max_retry_after=math.ceil(COOLDOWN_S))
    assert took < FAST
    assert stub.book_request_count() == calls + 1, "open again: no call"


def test_half_open_lets_exactly_one_probe_through(odaemons, stub):
    """While the probe (slow but successful) is in flight, every other order is
    refused at once without calling Books; the probe's success closes the circuit."""
    slow = 1.5 * SCALE
    env = dict(SHORT, BOOKS_TIMEOUT_MS=int(slow * 1000 + 3000 * SCALE))
    stub.mode = "error"
    orders = odaemons.start_orders(books_url=stub.url(), env=env, wait="database")
    api = OrdersApi(orders.url())
    trip(api, 1)
    assert circuit_state(orders) == 1
    logged = len(circuit_messages(orders))
    stub.delay, stub.mode = slow, "slow"
    calls = stub.book_request_count()
    time.sleep(COOLDOWN_S + 0.2 * SCALE)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        probe = pool.submit(timed_post, api, 1, 2)
        wait_for(lambda: stub.book_request_count() == calls + 1, scaled(3), message="the probe at Books")
        assert circuit_state(orders) == 2, "half-open while the probe is in flight"
        others = list(pool.map(lambda _: timed_post(api, 1), range(6)))
        assert not probe.done(), "the probe should still be waiting for the slow Books"
        for resp, took in others:
            assert_503_with_retry_after(resp)
            assert took < slow * 0.5, f"a request during the probe took {took:.2f}s: it waited for Books?"
        assert stub.book_request_count() == calls + 1, "exactly one request may reach Books while half-open"
        resp, took = probe.result(timeout=slow + scaled(10))
    assert_status(resp, 201)
    assert resp.json()["quantity"] == 2
    assert took >= slow * 0.8, took
    assert circuit_state(orders) == 0
    wait_circuit_log(orders, "half", after=logged)
    wait_circuit_log(orders, "closed", after=logged)
    stub.mode = "ok"
    for _ in range(3):
        resp, _ = timed_post(api, 1)
        assert_status(resp, 201)


def test_request_id_reaches_the_stub(odaemons, stub):
    orders = odaemons.start_orders(books_url=stub.url(), wait="database")
    rid = f"stub-{uuid.uuid4()}"
    resp = requests.post(orders.url("/v1/orders"), json={"book_id": 3, "quantity": 1},
                         headers={"X-Request-ID": rid}, timeout=scaled(5))
    assert_status(resp, 201)
    assert [r for _, p, r in stub.book_requests if p == "/v1/books/3"] == [rid]


# --------------------------------------------------------------------------
# Orders killed under load; PostgreSQL restarted under Orders


@pytest.fixture(scope="module")
def durable_pg():
    with PgCluster("orders-faults", durable=True) as cluster:
        yield cluster


@pytest.fixture
def dpg(durable_pg):
    if not durable_pg.is_running():
        durable_pg.start()
    yield durable_pg
    if not durable_pg.is_running():
        durable_pg.start()


@pytest.fixture
def dpair(odaemons, dpg, tmp_path):
    """Books on the session cluster, Orders on the durable cluster of this module."""
    (tmp_path / "orders").mkdir(exist_ok=True)
    with DaemonManager(dpg, tmp_path / "orders") as omanager:
        yield ServicePair(odaemons, omanager, orders_env={"ORDERS_DB_TIMEOUT_MS": 2000})


def test_orders_killed_under_load_loses_nothing(dpair):
    pair = dpair
    api = pair.api
    book = pair.books_api.create_book(title="Durable", price="2.50")
    stop = threading.Event()
    lock = threading.Lock()
    results = {}  # key -> (quantity, status or exception, body)

    def client(n):
        session = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            key = f"c{n}-{i}-{uuid.uuid4().hex[:8]}"
            q = 1 + (i % 9)
            try:
                r = session.post(api.url("/v1/orders"), json={"book_id": book["id"], "quantity": q},
                                 headers={"Idempotency-Key": key}, timeout=scaled(5))
                outcome = (q, r.status_code, r.json() if r.status_code == 201 else r.text)
            except requests.RequestException as exc:
                outcome = (q, exc, None)
                time.sleep(0.05)
            with lock:
                results[key] = outcome

    def acked():
        with lock:
            return sum(1 for _, s, _ in results.values() if s == 201)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: acked() >= 30, scaled(15), message="30 orders acknowledged")
        pair.orders.kill()
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(scaled(10))
    assert pair.orders.returncode == -signal.SIGKILL

    pair.restart_orders()
    with lock:
        snapshot = dict(results)
    ok = {k: v for k, v in snapshot.items() if v[1] == 201}
    for key, (q, _, order) in ok.items():
        got = api.get(f"/v1/orders/{order['id']}")
        assert_status(got, 200)
        assert got.json() == order, f"acknowledged order {order['id']} changed or lost after the crash"
    others = {k: v for k, v in snapshot.items() if v[1] != 201}
    assert others, "no request was cut off by the kill: the test did not test anything"
    print(f"{len(ok)} acknowledged, {len(others)} cut off by the kill")
    for key, (q, status, _) in others.items():
        assert not isinstance(status, int) or status in (503,), (key, status, snapshot[key])

    # every request that got no 201 is retried with its key: replayed if it was
    # committed before the crash, created now if not -- never twice
    for key, (q, _, _) in others.items():
        r = requests.post(api.url("/v1/orders"), json={"book_id": book["id"], "quantity": q},
                          headers={"Idempotency-Key": key}, timeout=scaled(10))
        assert_status(r, 201)
        ok[key] = (q, 201, r.json())
        assert r.json()["quantity"] == q
    ids = [order["id"] for _, _, order in ok.values()]
    assert len(set(ids)) == len(ids), "two keys answered with the same order"
    assert api.total_count() == len(snapshot), (
        f"{len(snapshot)} distinct keys but {api.total_count()} orders: an order without its key, "
        f"or a key that was lost")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restarted_under_orders(dpair, dpg, mode):
    pair = dpair
    api, orders = pair.api, pair.orders
    book = pair.books_api.create_book(title="Through a restart", price="9.99")
    first = api.order(book["id"], 1)

    dpg.stop(mode=mode)
    resp = wait_health(orders, 503, within=scaled(5))
    assert without_redis(resp.json()) == DB_DOWN, describe(resp)
    resp, took = timed_post(api, book["id"], timeout=scaled(15))
    assert_error(resp, 503, "SERVICE_UNAVAILABLE")
    assert took < scaled(5), f"POST took {took:.1f}s with the database down"
    t = time.monotonic()
    resp = requests.get(api.url("/v1/orders"), timeout=scaled(15))
    assert_error(resp, 503, "SERVICE_UNAVAILABLE")
    assert time.monotonic() - t < scaled(5)
    assert circuit_state(orders) == 0, "database failures are not Books failures"
    assert_status(requests.get(orders.url("/livez"), timeout=scaled(3)), 200)

    dpg.start()
    t0 = time.monotonic()
    while True:
        resp, _ = timed_post(api, book["id"], timeout=scaled(15))
        if resp.status_code == 201:
            break
        assert_error(resp, 503, "SERVICE_UNAVAILABLE")
        assert time.monotonic() - t0 < scaled(15), f"orders not working within 15 s\n{orders.log_tail()}"
        time.sleep(0.2)
    assert without_redis(wait_health(orders, 200, within=scaled(10)).json()) == HEALTHY
    assert api.get(f"/v1/orders/{first['id']}").json() == first
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for r, _ in pool.map(lambda _: timed_post(api, book["id"]), range(8)):
            assert_status(r, 201)
    assert orders.alive()
    bad = orders.non_json_lines()
    assert bad == [], f"stderr lines that are not JSON log records: {bad[:10]}"


def test_client_gone_before_the_answer_is_499_not_500(odaemons, stub):
    """A client that resets its connection while its order waits on Books:
    the late answer cannot be written. That is the client's doing (499 in
    the access log and metrics), not a server error that would fire a 5xx
    alert."""
    import socket
    import struct

    stub.mode = "hang"
    orders = odaemons.start_orders(books_url=stub.url(), env=SHORT, wait="database")
    body = b'{"book_id": 1, "quantity": 1}'
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", orders.port), timeout=5)
        s.sendall(b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.1)
        # RST on close: the daemon's write fails instead of filling a buffer
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    wait_for(lambda: len([r for r in orders.access_records() if r.get("HTTP_PATH") == "/v1/orders"]) >= 3,
             scaled(TIMEOUT_S + 5), message="three access records for the abandoned orders")
    statuses = [r["HTTP_STATUS"] for r in orders.access_records() if r.get("HTTP_PATH") == "/v1/orders"]
    assert "500" not in statuses, statuses
    assert "499" in statuses, statuses
    samples = scrape(orders)
    assert metric_value(samples, "http_requests_total", handler="/v1/orders", method="POST",
                        status_class="5xx", code="500") == 0, "a vanished client counted as 500"
