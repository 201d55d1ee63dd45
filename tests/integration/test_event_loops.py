"""Several event loops (BOOKS_THREADS): each loop a thread with its own main
context, HTTP server on the shared listening socket, database pool and
metrics shard. The rest of the suite already runs with 2 loops
(harness.TEST_THREADS); these tests look at the loops themselves: that they
all serve, that a scrape sums their shards, that the pool is shared out, that
one loop still works, that a stop drains every loop, and that a database
restart is survived by every loop's pool."""

import concurrent.futures
import os
import signal
import time

import pytest
import requests

from harness import assert_status, metric_value, parse_metrics, scaled, scrape_settled, wait_for


def scrape(daemon):
    resp = requests.get(daemon.url("/metrics"), timeout=5)
    assert_status(resp, 200)
    return parse_metrics(resp.text)


def threads_of(pid):
    """{thread name: (tid, CPU ticks)} of a process, from /proc."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a thread that just ended
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        out[name if name not in out else f"{name}#{tid}"] = (int(tid), ticks)
    return out


def hammer(daemon, path, connections, per_connection):
    """`connections` keep-alive sessions, each making `per_connection` GETs;
    the statuses."""
    def one(_):
        with requests.Session() as s:
            return [s.get(daemon.url(path), timeout=10).status_code for _ in range(per_connection)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=connections) as pool:
        return [code for codes in pool.map(one, range(connections)) for code in codes]


def test_every_loop_serves(daemons):
    d = daemons.start(env={"BOOKS_THREADS": "3"})
    names = threads_of(d.pid)
    assert {"loop-1", "loop-2"} <= set(names), f"threads: {sorted(names)}"
    book = d.api.create_book(title="spread")
    before = threads_of(d.pid)

    codes = hammer(d, f"/v1/books/{book['id']}", connections=24, per_connection=60)
    assert set(codes) == {200}, f"{len(codes)} answers: {sorted(set(codes))}"

    after = threads_of(d.pid)
    main = str(d.pid)
    busy = [name for name in ("loop-1", "loop-2")
            if after[name][1] > before[name][1]]
    main_name = next(n for n, (tid, _) in after.items() if str(tid) == main)
    if after[main_name][1] > before[main_name][1]:
        busy.append("main")
    assert len(busy) >= 2, (f"1,440 requests over 24 connections ran on {busy} only: "
                            f"before {before}, after {after}")


def test_a_scrape_sums_every_loop(daemons):
    d = daemons.start(env={"BOOKS_THREADS": "3", "BOOKS_DB_POOL_SIZE": "5"})
    book = d.api.create_book(title="counted")
    before = metric_value(parse_metrics(scrape_settled(d)), "http_requests_total",
                          handler="/v1/books/{id}", method="GET", status_class="2xx",
                          code="200") or 0

    # a connection each: they land on whichever loop accepts first
    for _ in range(45):
        resp = requests.get(d.url(f"/v1/books/{book['id']}"), headers={"Connection": "close"},
                            timeout=5)
        assert_status(resp, 200)

    samples = parse_metrics(scrape_settled(d))
    after = metric_value(samples, "http_requests_total", handler="/v1/books/{id}", method="GET",
                         status_class="2xx", code="200")
    assert after - before == 45, f"{after - before} of 45 requests counted"
    # BOOKS_DB_POOL_SIZE is shared out (2 + 2 + 1), not multiplied
    assert metric_value(samples, "db_pool_max_connections") == 5
    wait_for(lambda: metric_value(scrape(d), "db_pool_connections", state="idle")
             + metric_value(scrape(d), "db_pool_connections", state="busy") == 5,
             scaled(10), message="all 5 pooled connections up")
    # one series per label set, however many loops counted into it
    lines = [s for s in samples if s[0] == "http_requests_total"
             and s[1].get("handler") == "/v1/books/{id}" and s[1].get("method") == "GET"
             and s[1].get("code") == "200"]
    assert len(lines) == 1, lines


def test_one_loop(daemons):
    d = daemons.start(env={"BOOKS_THREADS": "1"})
    names = threads_of(d.pid)
    assert not any(n.startswith("loop-") for n in names), f"threads: {sorted(names)}"
    book = d.api.create_book(title="single")
    assert set(hammer(d, f"/v1/books/{book['id']}", connections=4, per_connection=10)) == {200}


@pytest.mark.parametrize("value", ["0", "65", "two", "-1"])
def test_bad_thread_counts_are_configuration_errors(daemons, pg, value):
    d = daemons.spawn(daemons.env_for(pg.dsn_uri(pg.new_db()), None, {"BOOKS_THREADS": value}),
                      port=None)
    rc = d.wait(scaled(10))
    assert rc == 78, f"BOOKS_THREADS={value}: exit {rc}\n{d.stderr_text()}"
    assert "BOOKS_THREADS" in d.stderr_text() + d.stdout_text()


def test_stop_drains_every_loop(daemons, pg):
    """SIGTERM with requests in flight on several loops (the database frozen
    under them): each is answered before the daemon exits 0."""
    d = daemons.start(env={"BOOKS_THREADS": "3", "BOOKS_DB_TIMEOUT_MS": "8000"})
    book = d.api.create_book(title="in flight")
    # every loop's connections up, so that each has backends to freeze
    hammer(d, f"/v1/books/{book['id']}", connections=12, per_connection=5)
    backends = [int(p) for p in pg.psql(
        f"SELECT pid FROM pg_stat_activity WHERE datname = '{d.db}' AND pid <> pg_backend_pid()").split()]
    assert backends, "the daemon has no database connection"
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=9) as pool:
            futures = [pool.submit(requests.get, d.url(f"/v1/books/{book['id']}"),
                                   headers={"Connection": "close"}, timeout=scaled(20))
                       for _ in range(9)]
            # the scrape itself is in flight while it is answered: 9 + 1
            wait_for(lambda: metric_value(scrape(d), "http_requests_in_flight") >= 10,
                     scaled(10), message="9 requests in flight")
            os.kill(d.pid, signal.SIGTERM)
            time.sleep(0.5)
            for pid in backends:
                os.kill(pid, signal.SIGCONT)
            codes = [f.result().status_code for f in futures]
    finally:
        for pid in backends:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert codes == [200] * 9, codes
    assert d.wait(scaled(15)) == 0, d.stderr_text()


def test_every_loop_reconnects_after_a_database_restart(daemons, pg):
    d = daemons.start(env={"BOOKS_THREADS": "3"})
    book = d.api.create_book(title="restart")
    pg.stop("fast")
    pg.start()

    def all_ok():
        codes = hammer(d, f"/v1/books/{book['id']}", connections=12, per_connection=5)
        return set(codes) == {200}

    wait_for(all_ok, scaled(20), interval=0.5, message="every loop answering 200 after the restart")
    # and in the end every pooled connection of every loop is back
    wait_for(lambda: metric_value(scrape(d), "db_pool_connections", state="down") == 0,
             scaled(15), interval=0.5, message="no pooled connection down")
