"""Connections and overload at the HTTP edge layer: kept-alive connections
the client closed are released at once, running out of descriptors pauses
accepting instead of killing the listener, HTTP_MAX_CONNECTIONS refuses the
connection over the limit with a 503, and a saturated database pool
(BOOKS_DB_MAX_WAITING / ORDERS_DB_MAX_WAITING) sheds requests fast while
/health and /livez keep answering.

Gauges and counters: http_connections_open, http_connections_refused_total,
http_accept_pauses_total."""

import concurrent.futures
import os
import signal
import socket
import threading
import time

import requests

from harness import TableLock, ServicePair, assert_status, describe, metric_value, parse_metrics, scaled, wait_for
from rawhttp import RawConnection, assert_json_error, open_fds, request_bytes

LIVEZ = request_bytes("GET", "/livez")


def scrape(daemon, timeout=5):
    resp = requests.get(daemon.url("/metrics"), timeout=timeout)
    assert_status(resp, 200)
    return parse_metrics(resp.text)


def metric(daemon, name, **labels):
    """The value of a metric the daemon must export (a missing one fails)."""
    samples = scrape(daemon)
    assert any(n == name for n, _, _ in samples), f"{daemon.name} does not export {name}"
    return metric_value(samples, name, **labels)


def settled_fds(pid, quiet=0.3, within=5):
    """The descriptor count once it has not changed for `quiet` seconds."""
    last, since = open_fds(pid), time.monotonic()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = open_fds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def keep_alive_connections(port, n, request=LIVEZ):
    """n connections, each having made one request (answered 200) and kept open."""
    conns = []
    try:
        for _ in range(n):
            c = RawConnection(port)
            conns.append(c)
            c.send(request)
            resp = c.read_response()
            assert resp.status == 200, resp
            assert not resp.has_token("Connection", "close"), resp
    except BaseException:
        close_all(conns)
        raise
    return conns


def close_all(conns):
    for c in conns:
        c.close()


def wait_quiet(daemon):
    """No connection open but the scrape's own (earlier clients' closes seen)."""
    wait_for(lambda: metric_value(scrape(daemon), "http_connections_open") <= 1, scaled(2), interval=0.05,
             message="http_connections_open down to the scrape's own connection")
    # the scrape's own connection closes after its answer: let the server see that too
    wait_for(lambda: daemon_quiet_after_scrape(daemon), scaled(2), interval=0.05,
             message="the scrape's own connection closed")


def daemon_quiet_after_scrape(daemon):
    """The open-connection count seen from a raw connection is 1 (itself)."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("http_connections_open "):
            return float(line.split()[1]) <= 1
    return False


def health_within(daemon, within):
    """GET /health on a fresh connection answers 200 within `within` seconds."""
    deadline = time.monotonic() + within
    last = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            last = requests.get(daemon.url("/health"), timeout=max(0.3, remaining),
                                headers={"Connection": "close"})
            if last.status_code == 200:
                return last
        except requests.RequestException as exc:
            last = exc
        if time.monotonic() >= deadline:
            detail = describe(last) if isinstance(last, requests.Response) else repr(last)
            raise AssertionError(f"GET /health not 200 within {within}s: {detail}\n{daemon.log_tail()}")
        time.sleep(0.05)


# --------------------------------------------------------------------------
# A. idle keep-alive connections the client closed are released at once


def test_closed_keep_alive_connections_are_released(daemons):
    d = daemons.start(env={"HTTP_MAX_CONNECTIONS": "1000"})  # whatever the default, 300 fit
    assert_status(d.api.get("/v1/books"), 200)
    gauge_before = metric_value(scrape(d), "http_connections_open")
    fds_before = settled_fds(d.pid)

    conns = keep_alive_connections(d.port, 300)
    try:
        assert open_fds(d.pid) >= fds_before + 300, "the daemon does not hold the 300 connections?"
        held = scrape(d)
    finally:
        close_all(conns)
    t0 = time.monotonic()
    try:
        wait_for(lambda: open_fds(d.pid) <= fds_before + 10, scaled(1), interval=0.02,
                 message=f"the daemon's descriptors back to {fds_before} (+10)")
    except AssertionError:
        raise AssertionError(f"{open_fds(d.pid)} descriptors open {time.monotonic() - t0:.1f}s after the "
                             f"client closed 300 kept-alive connections; {fds_before} before")
    assert any(n == "http_connections_open" for n, _, _ in held), "no http_connections_open gauge"
    held_open = metric_value(held, "http_connections_open")
    # gauge_before may still count a connection whose close was in flight
    assert held_open >= 300 + 1, f"http_connections_open was {held_open} with 300 more connections"
    wait_for(lambda: metric(d, "http_connections_open") <= gauge_before, scaled(1), interval=0.05,
             message=f"http_connections_open back to {gauge_before}")
    assert_status(d.api.get("/v1/books"), 200)


# --------------------------------------------------------------------------
# B. out of descriptors: accepting pauses, the listener survives


def test_descriptor_storm_pauses_accepting(daemons):
    d = daemons.start(env={"HTTP_MAX_CONNECTIONS": "100000"},
                      argv_prefix=["prlimit", "--nofile=256:256"])
    assert_status(d.api.get("/v1/books"), 200)
    socks = []
    try:
        for _ in range(600):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", d.port))  # 0, EINPROGRESS or a failure: all tolerated
            socks.append(s)
        time.sleep(2)
        assert d.alive(), d.log_tail()
    finally:
        for s in socks:
            s.close()
    health_within(d, scaled(2))
    assert metric(d, "http_accept_pauses_total") >= 1
    for _ in range(5):
        assert_status(d.api.get("/v1/books"), 200)


# --------------------------------------------------------------------------
# C. HTTP_MAX_CONNECTIONS


def test_connection_over_the_limit_gets_503(daemons):
    d = daemons.start(env={"HTTP_MAX_CONNECTIONS": "20"})
    wait_quiet(d)
    conns = keep_alive_connections(d.port, 20)
    try:
        extra = RawConnection(d.port)
        try:
            resp = extra.read_response(timeout=scaled(2))  # nothing sent
            assert_json_error(resp, 503, "SERVICE_UNAVAILABLE", f": {resp!r}")
            assert resp.header("Retry-After"), resp
            assert resp.has_token("Connection", "close"), resp
            assert extra.wait_closed(scaled(2)), "the refused connection was left open"
            assert extra.buf == b"", f"more after the 503: {extra.buf[:300]!r}"
        finally:
            extra.close()
        # the 20 held connections are not disturbed
        for c in conns[:3]:
            c.send(LIVEZ)
            assert c.read_response().status == 200
    finally:
        close_all(conns)
    health_within(d, scaled(2))
    assert metric(d, "http_connections_refused_total") >= 1
    wait_quiet(d)
    again = keep_alive_connections(d.port, 20)  # and the next connections are served as usual
    close_all(again)
    wait_quiet(d)  # their closes seen (a scrape refused meanwhile is retried)
    assert_status(d.api.get("/v1/books"), 200)


def test_refusals_are_budgeted_the_rest_wait_in_the_backlog(daemons):
    """Answering every connection over the limit cost so much that clients which
    reconnect at once starved the admitted ones; past BS_HTTP_REFUSE_BUDGET (32)
    refusals per 100 ms, newcomers wait in the listen backlog and are served
    once connections close."""
    d = daemons.start(env={"HTTP_MAX_CONNECTIONS": "20"})
    wait_quiet(d)
    held = keep_alive_connections(d.port, 20)
    before = metric_value(scrape_via(held[0]), "http_connections_refused_total")
    started = time.monotonic()
    extra = []
    try:
        for _ in range(200):
            c = RawConnection(d.port)
            c.send(LIVEZ)
            extra.append(c)
        time.sleep(0.3)
    finally:
        close_all(held)
    statuses = []
    try:
        for c in extra:  # each closed once answered, freeing its place
            statuses.append(c.read_response(timeout=scaled(10)).status)
            c.close()
    finally:
        elapsed = time.monotonic() - started
        close_all(extra)
    refused = statuses.count(503)
    windows = int(elapsed / 0.1) + 2
    assert set(statuses) <= {200, 503}, statuses
    assert refused <= 32 * windows, f"{refused} refused in {elapsed:.2f}s ({windows} windows of 32)"
    # without the budget every one of them was refused at once
    assert statuses.count(200) >= 20, statuses
    wait_quiet(d)  # (its own scrapes may have been refused too)
    assert metric(d, "http_connections_refused_total") - before >= refused


def scrape_via(conn):
    """The metrics read over a connection already admitted."""
    conn.send(request_bytes("GET", "/metrics"))
    resp = conn.read_response()
    assert resp.status == 200, resp
    return parse_metrics(resp.body.decode())


# --------------------------------------------------------------------------
# D. a saturated database pool sheds requests fast


OVERLOAD = {"BOOKS_DB_POOL_SIZE": "2", "BOOKS_DB_MAX_WAITING": "4"}


def timed_get(url, timeout=15):
    t0 = time.monotonic()
    try:
        resp = requests.get(url, timeout=timeout, headers={"Connection": "close"})
    except requests.RequestException as exc:
        return exc, time.monotonic() - t0
    return resp, time.monotonic() - t0


def fire(url, n):
    """n concurrent GETs, each on its own connection, started together; futures
    of (response or exception, seconds)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=n)
    barrier = threading.Barrier(n)

    def one():
        barrier.wait(10)
        return timed_get(url)

    futures = [pool.submit(one) for _ in range(n)]
    pool.shutdown(wait=False)
    return futures


def is_fast_shed(result, bound):
    resp, took = result
    if not isinstance(resp, requests.Response) or resp.status_code != 503 or took > bound:
        return False
    try:
        code = resp.json().get("error")
    except ValueError:
        return False
    return code == "SERVICE_UNAVAILABLE" and bool(resp.headers.get("Retry-After"))


def summary(results):
    out = []
    for resp, took in results:
        if isinstance(resp, requests.Response):
            out.append(f"{resp.status_code} {resp.text[:60]!r} after {took:.2f}s")
        else:
            out.append(f"{resp!r} after {took:.2f}s")
    return "\n  ".join(out)


def test_overload_sheds_fast(daemons, pg):
    d = daemons.start(env=OVERLOAD)
    book = d.api.create_book(title="overload")
    url = d.url(f"/v1/books/{book['id']}")
    lock = TableLock(pg, d.db).acquire()
    try:
        futures = fire(url, 30)
        # the shed ones are answered by now; the others wait for the lock
        concurrent.futures.wait(futures, timeout=scaled(1) + 1)
    finally:
        lock.release()
    all_results = [f.result(timeout=20) for f in futures]
    fast = [r for r in all_results if is_fast_shed(r, scaled(1))]
    assert len(fast) >= 20, (f"{len(fast)} of 30 requests shed with a fast 503 SERVICE_UNAVAILABLE "
                             f"+ Retry-After (pool 2, max waiting 4):\n  {summary(all_results)}")
    # after the lock: the queued requests finish, later ones are served
    for resp, _ in all_results:
        assert isinstance(resp, requests.Response), summary(all_results)
        assert resp.status_code in (200, 503), describe(resp)
    # within capacity (pool 2 + 4 waiting): nothing is shed
    later = [f.result(timeout=20) for f in fire(url, 4)]
    later += [f.result(timeout=20) for f in fire(d.url("/v1/books/424242"), 4)]
    for resp, _ in later:
        assert isinstance(resp, requests.Response) and resp.status_code in (200, 404), summary(later)
    assert_status(requests.get(d.url("/health"), timeout=5), 200)


# --------------------------------------------------------------------------
# E. /health and /livez answer while overloaded


def probe(daemon, path, within):
    resp, took = timed_get(daemon.url(path), timeout=within + 3)
    assert isinstance(resp, requests.Response), f"{daemon.name} GET {path}: {resp!r} after {took:.2f}s"
    assert took <= within, f"{daemon.name} GET {path} answered after {took:.2f}s (bound {within}s)"
    return resp


def test_health_and_livez_answer_while_overloaded(odaemons, pg):
    pair = ServicePair(odaemons, books_env=OVERLOAD,
                       orders_env={"ORDERS_DB_POOL_SIZE": "2", "ORDERS_DB_MAX_WAITING": "4"})
    book = pair.books_api.create_book(title="overload health")
    order = pair.api.order(book["id"], 1)
    books_lock = TableLock(pg, pair.books_db, "books").acquire()
    orders_lock = None
    futures = []
    try:
        orders_lock = TableLock(pg, pair.orders_db, "orders").acquire()
        futures += fire(pair.books.url(f"/v1/books/{book['id']}"), 30)
        futures += fire(pair.orders.url(f"/v1/orders/{order['id']}"), 30)
        wait_for(lambda: books_lock.waiting_backends() >= 2 and orders_lock.waiting_backends() >= 2,
                 scaled(5), message="both pools busy on the locked tables")
        for daemon in (pair.books, pair.orders):
            resp = probe(daemon, "/livez", scaled(2))
            assert_status(resp, 200)
            resp = probe(daemon, "/health", scaled(2))
            assert resp.status_code in (200, 503), describe(resp)
            assert isinstance(resp.json().get("status"), str), describe(resp)
    finally:
        if orders_lock is not None:
            orders_lock.release()
        books_lock.release()
        concurrent.futures.wait(futures, timeout=20)
    health_within(pair.books, scaled(5))
    health_within(pair.orders, scaled(5))


# --------------------------------------------------------------------------
# F. a burst of requests costs the upstreams little: health checks are shared,
#    book lookups waiting for a connection to Books are bounded


def fire_post(url, n, body):
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=n)
    barrier = threading.Barrier(n)

    def one():
        barrier.wait(10)
        t0 = time.monotonic()
        try:
            resp = requests.post(url, json=body, timeout=15, headers={"Connection": "close"})
        except requests.RequestException as exc:
            return exc, time.monotonic() - t0
        return resp, time.monotonic() - t0

    futures = [pool.submit(one) for _ in range(n)]
    pool.shutdown(wait=False)
    return futures


def health_records(daemon):
    return [r for r in daemon.access_records() if r.get("HTTP_PATH") == "/health"]


def test_health_burst_makes_one_call_to_books(odaemons):
    pair = ServicePair(odaemons)
    before = len(health_records(pair.books))
    pair.books.send_signal(signal.SIGSTOP)  # the first check hangs: every other one joins it
    try:
        results = [f.result(timeout=30) for f in fire(pair.orders.url("/health"), 100)]
    finally:
        pair.books.send_signal(signal.SIGCONT)
    for resp, took in results:
        assert isinstance(resp, requests.Response) and resp.status_code == 503, summary(results)
        assert resp.json()["services"]["books"] == "unhealthy", describe(resp)
    health_within(pair.orders, scaled(5))
    # Books answers what it received while stopped, then the probe's own checks
    time.sleep(scaled(0.5))
    calls = len(health_records(pair.books)) - before
    assert 1 <= calls <= 5, f"{calls} GET /health reached Books for 100 of Orders' (expected one or a few)"


def test_health_burst_is_one_database_ping(daemons, pg):
    d = daemons.start()
    queries = lambda: sum(v for n, _, v in scrape(d) if n == "db_queries_total")  # noqa: E731
    before = queries()
    backends = [int(p) for p in pg.psql(
        f"SELECT pid FROM pg_stat_activity WHERE datname = '{d.db}' AND pid <> pg_backend_pid()").split()]
    assert backends, "the daemon has no database connection"
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)
    try:
        results = [f.result(timeout=30) for f in fire(d.url("/health"), 100)]
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)
    for resp, took in results:
        assert isinstance(resp, requests.Response) and resp.status_code == 503, summary(results)
    health_within(d, scaled(10))
    pings = queries() - before
    assert pings <= 5, f"{pings} database queries for 100 GET /health (expected one or a few)"


def test_book_lookups_beyond_books_max_waiting_are_shed(odaemons):
    # one loop: the limits count per event loop
    pair = ServicePair(odaemons, orders_env={"BOOKS_MAX_CONNECTIONS": "1", "BOOKS_MAX_WAITING": "2",
                                             "BOOKS_TIMEOUT_MS": "3000", "ORDERS_THREADS": "1"})
    book = pair.books_api.create_book(title="shed")
    pair.books.send_signal(signal.SIGSTOP)
    try:
        futures = fire_post(pair.orders.url("/v1/orders"), 12, {"book_id": book["id"], "quantity": 1})
        concurrent.futures.wait(futures, timeout=scaled(1) + 1)
        done = [f.result() for f in futures if f.done()]
    finally:
        pair.books.send_signal(signal.SIGCONT)
    results = [f.result(timeout=30) for f in futures]
    fast = [r for r in done if is_fast_shed(r, scaled(1))]
    # 1 connection + 2 waiting are in flight; the other 9 are shed at once
    assert len(fast) >= 9, f"{len(fast)} of 12 shed fast:\n  {summary(results)}"
    for resp, _ in results:
        assert isinstance(resp, requests.Response) and resp.status_code in (201, 503), summary(results)
    samples = scrape(pair.orders)
    assert metric_value(samples, "books_requests_total", result="shed") >= 9
    # shedding is our own limit, not a Books failure: the circuit stays closed
    assert metric_value(samples, "books_circuit_opens_total") == 0
    assert pair.api.order(book["id"], 1)["status"] == "pending"
