"""PostgreSQL faults, on a cluster of this module's own: stopped, restarted,
never up at start, connections killed, frozen, and queries past the deadline.
The daemon must answer 503 quickly, stay up, and recover without a restart."""

import concurrent.futures
import os
import signal
import time

import pytest
import requests

from harness import (DaemonManager, PgCluster, TableLock, assert_error, assert_json_content_type,
                     assert_status, describe)

UNHEALTHY = {"status": "unhealthy", "services": {"database": "unhealthy"}}
HEALTHY = {"status": "healthy", "services": {"database": "healthy"}}


@pytest.fixture(scope="module")
def fault_pg():
    with PgCluster("faults", durable=True) as cluster:
        yield cluster


@pytest.fixture
def fpg(fault_pg):
    """The module's cluster, running at the start and at the end of each test."""
    if not fault_pg.is_running():
        fault_pg.start()
    yield fault_pg
    if not fault_pg.is_running():
        fault_pg.start()


@pytest.fixture
def fdaemons(fpg, binary, tmp_path):
    with DaemonManager(fpg, tmp_path) as manager:
        yield manager


def timed_get(daemon, path, timeout=8):
    t = time.monotonic()
    resp = requests.get(daemon.url(path), timeout=timeout)
    return resp, time.monotonic() - t


def wait_health(daemon, want, within, per_request_bound=2.5):
    """Poll /health until it answers `want`; every answer must come within
    per_request_bound seconds.  Returns (response, seconds waited)."""
    t0 = time.monotonic()
    seen = []
    while True:
        resp, took = timed_get(daemon, "/health", timeout=per_request_bound + 3)
        seen.append((resp.status_code, round(took, 2)))
        assert took <= per_request_bound, f"/health took {took:.2f}s (> {per_request_bound}s){describe(resp)}"
        if resp.status_code == want:
            return resp, time.monotonic() - t0
        assert resp.status_code in (200, 503), describe(resp)
        assert daemon.alive(), daemon.log_tail()
        if time.monotonic() - t0 > within:
            raise AssertionError(f"/health not {want} within {within}s; answers (status, seconds): {seen[-10:]}"
                                 f"\n{daemon.log_tail()}")
        time.sleep(0.1)


def wait_working(daemon, book_id, within):
    """Poll GET /v1/books/{id} until 200; in between only 503 is acceptable."""
    t0 = time.monotonic()
    while True:
        resp = requests.get(daemon.url(f"/v1/books/{book_id}"), timeout=8)
        if resp.status_code == 200:
            return resp
        assert resp.status_code == 503, describe(resp)
        if time.monotonic() - t0 > within:
            raise AssertionError(f"requests not working again within {within}s{describe(resp)}\n{daemon.log_tail()}")
        time.sleep(0.1)


def concurrent_gets(daemon, path, n=12, timeout=10):
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: requests.get(daemon.url(path), timeout=timeout), range(n)))


def assert_all_requests_unavailable(daemon, book_id):
    for method, path, kw in [
        ("GET", "/v1/books", {}),
        ("GET", f"/v1/books/{book_id}", {}),
        ("POST", "/v1/books", {"json": {"title": "t", "author": "a", "price": "1.00"}}),
        ("PUT", f"/v1/books/{book_id}", {"json": {"title": "t2"}}),
        ("DELETE", f"/v1/books/{book_id}", {}),
    ]:
        t = time.monotonic()
        resp = requests.request(method, daemon.url(path), timeout=10, **kw)
        took = time.monotonic() - t
        assert_error(resp, 503, "SERVICE_UNAVAILABLE")
        assert took < 7, f"{method} {path} took {took:.1f}s to say 503"


def test_postgres_stopped_then_restarted(fdaemons, fpg):
    d = fdaemons.start(env={"BOOKS_DB_TIMEOUT_MS": "2000"})
    book = d.api.create_book(title="survivor", price="4.20")

    fpg.stop(mode="fast")
    resp, waited = wait_health(d, 503, within=3)
    assert_json_content_type(resp)
    assert resp.json() == UNHEALTHY, describe(resp)

    assert_all_requests_unavailable(d, book["id"])
    # a burst while down: all 503, none hang
    for r in concurrent_gets(d, "/v1/books"):
        assert_error(r, 503, "SERVICE_UNAVAILABLE")
    # endpoints without a database dependency keep working
    assert_status(requests.get(d.url("/livez"), timeout=3), 200)
    assert_status(requests.get(d.url("/metrics"), timeout=3), 200)
    assert_status(requests.get(d.url("/openapi.json"), timeout=3), 200)
    assert d.alive()

    fpg.start()
    resp, waited = wait_health(d, 200, within=10)
    assert resp.json() == HEALTHY
    got = wait_working(d, book["id"], within=5)
    assert got.json() == book, "the book (not deleted while down) must be intact"
    created = d.api.create_book(title="after restart")
    assert created["id"] > book["id"]
    # every pooled connection works again, not just one
    for r in concurrent_gets(d, f"/v1/books/{book['id']}"):
        assert_status(r, 200)
    assert d.alive()


def test_postgres_restarted_twice(fdaemons, fpg):
    d = fdaemons.start(env={"BOOKS_DB_TIMEOUT_MS": "2000"})
    book = d.api.create_book(title="twice")
    for _ in range(2):
        fpg.stop(mode="immediate")
        wait_health(d, 503, within=3)
        fpg.start()
        wait_health(d, 200, within=10)
        wait_working(d, book["id"], within=5)
    for r in concurrent_gets(d, "/v1/books"):
        assert_status(r, 200)


def test_daemon_started_while_postgres_down(fdaemons, fpg):
    db = fpg.new_db()
    fpg.stop(mode="fast")
    d = fdaemons.start(db=db, wait="listening", env={"BOOKS_DB_TIMEOUT_MS": "2000"})
    assert_status(requests.get(d.url("/livez"), timeout=3), 200)
    resp, _ = wait_health(d, 503, within=3)
    assert resp.json() == UNHEALTHY, describe(resp)
    resp, took = timed_get(d, "/v1/books")
    assert_error(resp, 503, "SERVICE_UNAVAILABLE")
    assert took < 7
    # still up a while later, still answering
    time.sleep(1)
    assert d.alive(), d.log_tail()

    fpg.start()
    wait_health(d, 200, within=15)
    book = d.api.create_book(title="migrations ran late")
    assert_status(d.api.get(f"/v1/books/{book['id']}"), 200)
    versions = fpg.psql("SELECT count(*) FROM schema_migrations", db=db).strip()
    assert int(versions) >= 1


def test_connections_killed_by_postgres(fdaemons, fpg):
    d = fdaemons.start()
    book = d.api.create_book(title="terminated")
    killed = fpg.psql(
        f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE datname = '{d.db}' AND pid <> pg_backend_pid()").strip()
    assert int(killed) >= 1, "expected the daemon to hold at least one connection"
    wait_working(d, book["id"], within=10)
    for r in concurrent_gets(d, f"/v1/books/{book['id']}"):
        assert_status(r, 200)
    wait_health(d, 200, within=10)
    assert d.alive()


def postgres_pids(cluster):
    """The postmaster and all its children."""
    root = cluster.postmaster_pid()
    assert root, "no postmaster pid"
    pids = {root}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == root:
                pids.add(int(entry))
    return pids


def test_postgres_frozen(fdaemons, fpg):
    """PostgreSQL accepts TCP but never answers (SIGSTOP): nothing may hang."""
    d = fdaemons.start(env={"BOOKS_DB_TIMEOUT_MS": "1500"})
    book = d.api.create_book(title="frozen")
    pids = postgres_pids(fpg)
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        resp, _ = wait_health(d, 503, within=4)
        assert resp.json() == UNHEALTHY
        resp, took = timed_get(d, f"/v1/books/{book['id']}", timeout=10)
        assert resp.status_code in (503, 504), describe(resp)
        assert took < 5, f"GET took {took:.1f}s with a 1.5 s query deadline"
        assert_status(requests.get(d.url("/livez"), timeout=3), 200)
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
    wait_health(d, 200, within=10)
    wait_working(d, book["id"], within=10)
    for r in concurrent_gets(d, f"/v1/books/{book['id']}"):
        assert_status(r, 200)


def test_query_deadline(fdaemons, fpg):
    """A query blocked past BOOKS_DB_TIMEOUT_MS is answered with an error, and
    the connection is usable afterwards."""
    d = fdaemons.start(env={"BOOKS_DB_TIMEOUT_MS": "1000"})
    book = d.api.create_book(title="deadline")
    with TableLock(fpg, d.db):
        resp, took = timed_get(d, "/v1/books", timeout=10)
        assert resp.status_code in (503, 504), describe(resp)
        assert_json_content_type(resp)
        assert resp.json().get("error") in ("SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT", "TIMEOUT"), describe(resp)
        assert took < 3.5, f"answered after {took:.1f}s with a 1 s deadline"
        # the health check does not touch the locked table
        assert_status(requests.get(d.url("/health"), timeout=3), 200)
    # after the lock, every pooled connection is usable (cancelled queries cleaned up)
    for r in concurrent_gets(d, "/v1/books"):
        assert_status(r, 200)
    assert_status(d.api.get(f"/v1/books/{book['id']}"), 200)
    assert d.alive()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_logs_stay_json_when_postgres_goes_away(fdaemons, fpg, mode):
    """libpq notices and errors (e.g. 'WARNING: terminating connection due to
    immediate shutdown command') must go through the JSON logger, not raw to stderr."""
    d = fdaemons.start()
    d.api.create_book(title="notices")
    fpg.stop(mode=mode)
    wait_health(d, 503, within=3)
    requests.get(d.url("/v1/books"), timeout=8)
    fpg.start()
    time.sleep(0.5)  # let any reconnect attempt log what it has to say
    bad = d.non_json_lines()
    assert bad == [], f"stderr lines that are not JSON log records: {bad[:10]}"


def test_database_recreated_under_the_daemon(fdaemons, fpg):
    """The database is dropped and created again empty (a restore gone wrong,
    an operator's mistake): the daemon notices the missing schema when it
    reconnects, applies the migrations again and serves, without a restart."""
    d = fdaemons.start(env={"BOOKS_DB_TIMEOUT_MS": "2000"})
    d.api.create_book(title="before")
    fpg.psql(f'DROP DATABASE "{d.db}" WITH (FORCE)')
    fpg.psql(f'CREATE DATABASE "{d.db}"')
    wait_health(d, 200, within=15)
    book = d.api.create_book(title="after")
    resp = d.api.get("/v1/books")
    assert_status(resp, 200)
    assert [b["title"] for b in resp.json()] == ["after"], describe(resp)
    assert resp.headers["X-Total-Count"] == "1"
    assert book["id"] == 1
    versions = fpg.psql("SELECT count(*) FROM schema_migrations", db=d.db).strip()
    assert versions == "1"
    d.wait_for_log(lambda r: "applying migrations again" in r.get("MESSAGE", ""), timeout=1,
                   message="the re-migration warning")


def test_unresolvable_database_host(fdaemons):
    """A DSN whose host name does not resolve: the lookup runs off the main
    loop, so the daemon keeps answering at once, unhealthy, and says why."""
    d = fdaemons.start(dsn="postgresql://postgres@no-such-host.invalid:5432/books",
                       wait="listening", env={"BOOKS_DB_TIMEOUT_MS": "2000"})
    for _ in range(5):
        resp, took = timed_get(d, "/livez", timeout=3)
        assert_status(resp, 200)
        assert took < 1, f"/livez took {took:.2f}s while the host name was being resolved"
    resp, _ = wait_health(d, 503, within=3)
    assert resp.json() == UNHEALTHY, describe(resp)
    d.wait_for_log(lambda r: "no-such-host.invalid" in r.get("MESSAGE", ""), timeout=20,
                   message="a log line naming the host that does not resolve")
    assert d.alive(), d.log_tail()
