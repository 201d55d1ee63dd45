"""Process lifecycle: configuration errors, --help/--version, DSN forms,
graceful SIGTERM with requests in flight, systemd notify and watchdog, socket
activation."""

import concurrent.futures
import signal
import socket
import time

import pytest
import requests

from harness import (EX_CONFIG, NotifySocket, TableLock, assert_status, connection_refused,
                     daemon_base_env, describe, free_port, metric_value, project_version,
                     read_http_response, scrape, wait_for)


# --------------------------------------------------------------------------
# configuration


def run_expect_exit(daemons, env, timeout=10, args=()):
    d = daemons.spawn(env, port=None, args=args)
    rc = d.wait(timeout)
    return d, rc


@pytest.mark.parametrize("name,overrides,variable", [
    ("missing dsn", {"BOOKS_DB_DSN": None}, "BOOKS_DB_DSN"),
    ("empty dsn", {"BOOKS_DB_DSN": ""}, "BOOKS_DB_DSN"),
    ("garbage uri", {"BOOKS_DB_DSN": "postgresql://["}, "BOOKS_DB_DSN"),
    ("garbage kv", {"BOOKS_DB_DSN": "this is not a dsn"}, "BOOKS_DB_DSN"),
    ("unknown kv keyword", {"BOOKS_DB_DSN": "host=127.0.0.1 bogus_keyword=1"}, "BOOKS_DB_DSN"),
    ("port abc", {"PORT": "abc"}, "PORT"),
    ("port 70000", {"PORT": "70000"}, "PORT"),
    ("port -1", {"PORT": "-1"}, "PORT"),
    ("port 80x", {"PORT": "80x"}, "PORT"),
    ("pool size abc", {"BOOKS_DB_POOL_SIZE": "abc"}, "BOOKS_DB_POOL_SIZE"),
    ("pool size 0", {"BOOKS_DB_POOL_SIZE": "0"}, "BOOKS_DB_POOL_SIZE"),
    ("db timeout abc", {"BOOKS_DB_TIMEOUT_MS": "abc"}, "BOOKS_DB_TIMEOUT_MS"),
    ("db timeout negative", {"BOOKS_DB_TIMEOUT_MS": "-5"}, "BOOKS_DB_TIMEOUT_MS"),
    ("request timeout abc", {"HTTP_REQUEST_TIMEOUT_MS": "abc"}, "HTTP_REQUEST_TIMEOUT_MS"),
    ("bind address garbage", {"BIND_ADDRESS": "not-an-address"}, "BIND_ADDRESS"),
])
def test_invalid_config_exits_78(daemons, pg, name, overrides, variable):
    env = daemons.env_for(pg.dsn_uri("postgres"), free_port(), overrides)
    d, rc = run_expect_exit(daemons, env)
    assert rc == EX_CONFIG, f"{name}: exit status {rc}, expected 78\n{d.log_tail()}"
    assert variable in d.stderr_text(), f"{name}: no log line names {variable}\n{d.log_tail()}"
    lines = [ln for ln in d.log_lines() if variable in ln]
    assert len(lines) >= 1


def test_config_error_is_one_json_line(daemons):
    env = daemons.env_for(None, free_port())
    d, rc = run_expect_exit(daemons, env)
    assert rc == EX_CONFIG
    recs = [r for r in d.log_records() if "BOOKS_DB_DSN" in r.get("MESSAGE", "")]
    assert len(recs) == 1, f"expected one JSON log record naming BOOKS_DB_DSN\n{d.log_tail()}"


@pytest.mark.parametrize("form", ["uri", "kv", "kv-socket", "uri-query", "kv-hostname",
                                  "uri-hostname"])
def test_dsn_forms(daemons, pg, form):
    db = pg.new_db()
    dsn = {
        "uri": pg.dsn_uri(db),
        "kv": pg.dsn_kv(db),
        "kv-socket": f"host={pg.sockdir} port={pg.port} dbname={db} user=postgres",
        "uri-query": f"postgresql:///{db}?host={pg.sockdir}&port={pg.port}&user=postgres",
        # a host name: the pool resolves it off the main loop and hands libpq the addresses
        "kv-hostname": f"host=localhost port={pg.port} dbname={db} user=postgres",
        "uri-hostname": f"postgresql://postgres@localhost:{pg.port}/{db}",
    }[form]
    d = daemons.start(dsn=dsn)
    book = d.api.create_book(title=f"via {form}")
    assert_status(d.api.get(f"/v1/books/{book['id']}"), 200)
    count = pg.psql("SELECT count(*) FROM books", db=db).strip()
    assert count == "1", "the daemon must use the database named in the DSN"


def test_help_and_version(daemons):
    env = daemon_base_env()  # no BOOKS_DB_DSN: neither needs configuration
    d, rc = run_expect_exit(daemons, env, args=["--help"])
    out = d.stdout_text() + d.stderr_text()
    assert rc == 0, f"--help exited {rc}\n{out}"
    assert d.stdout_text().strip(), "--help printed nothing on stdout"
    assert "bookstore-books" in out or "Usage" in out or "usage" in out, out

    d, rc = run_expect_exit(daemons, env, args=["--version"])
    assert rc == 0, f"--version exited {rc}\n{d.stdout_text()}{d.stderr_text()}"
    version = project_version()
    assert version and version in d.stdout_text(), f"--version printed {d.stdout_text()!r}, expected {version}"


def test_unknown_option_is_usage_error(daemons):
    d, rc = run_expect_exit(daemons, daemon_base_env(), args=["--bogus-option"])
    assert rc not in (0, None) and rc > 0, f"exit status {rc}\n{d.log_tail()}"


def test_port_in_use_fails_fast(daemons, pg):
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        env = daemons.env_for(pg.dsn_uri(pg.new_db()), port)
        d, rc = run_expect_exit(daemons, env, timeout=10)
        assert rc != 0 and rc > 0, f"exit status {rc} with the port taken\n{d.log_tail()}"
        assert str(port) in d.stderr_text() or "address" in d.stderr_text().lower(), d.log_tail()


def test_default_port_is_used_when_port_unset(daemons, pg):
    """PORT unset -> 8001.  Skipped when 8001 is busy on this machine."""
    if not connection_refused(8001):
        pytest.skip("port 8001 is in use here")
    env = daemons.env_for(pg.dsn_uri(pg.new_db()), None)
    d = daemons.spawn(env, port=8001)
    try:
        d.wait_listening(timeout=10)
    except AssertionError:
        if "8001" in d.stderr_text() and not d.alive():
            pytest.skip("8001 was taken meanwhile")
        raise
    d.wait_healthy()


# --------------------------------------------------------------------------
# SIGTERM / SIGINT


@pytest.mark.parametrize("depth", ["1", "32"], ids=["one-query-per-backend", "pipelined"])
def test_sigterm_finishes_in_flight_requests(daemons, pg, depth):
    """Depth 1 puts each query on its own backend; at depth 32, queries that
    arrive together share one backend's pipeline, so only the first of them
    waits on the lock in PostgreSQL and the others wait behind it."""
    # a pool big enough for the 3 queries on whichever loop they land
    d = daemons.start(env={"BOOKS_DB_TIMEOUT_MS": "30000", "BOOKS_DB_POOL_SIZE": "8",
                           "BOOKS_DB_PIPELINE_DEPTH": depth})
    d.api.create_book(title="in flight")
    n = 3
    with TableLock(pg, d.db) as lock:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=n)
        try:
            futures = [pool.submit(requests.get, d.url("/v1/books"), timeout=30) for _ in range(n)]
            if depth == "1":
                wait_for(lambda: lock.waiting_backends() >= n, 10,
                         message=f"{n} daemon queries blocked on the lock")
            else:
                # the scrape itself is in flight while it is answered
                wait_for(lambda: lock.waiting_backends() >= 1
                         and metric_value(scrape(d), "http_requests_in_flight") >= n + 1, 10,
                         message=f"{n} requests in flight behind a blocked query")
            assert not any(f.done() for f in futures)

            d.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            wait_for(lambda: connection_refused(d.port), 3, message="new connections to be refused after SIGTERM")
            assert d.alive(), f"daemon exited with requests in flight\n{d.log_tail()}"
            assert not any(f.done() for f in futures), [f.result() for f in futures if f.done()]
        finally:
            lock.release()
            results = []
            for f in futures:
                try:
                    results.append(f.result(timeout=20))
                except Exception as exc:  # noqa: BLE001
                    results.append(exc)
            pool.shutdown(wait=False)
    for r in results:
        assert isinstance(r, requests.Response), f"in-flight request failed: {r!r}\n{d.log_tail()}"
        assert_status(r, 200)
        assert isinstance(r.json(), list) and len(r.json()) == 1
    rc = d.wait(15)
    assert rc == 0, f"exit status {rc} after SIGTERM\n{d.log_tail()}"
    assert time.monotonic() - t0 < 15
    assert d.sanitizer_reports() == []


def test_sigterm_drain_is_bounded(daemons, pg):
    """A request that never finishes does not keep the daemon alive forever."""
    d = daemons.start(env={"BOOKS_DB_TIMEOUT_MS": "120000"})
    d.api.create_book(title="stuck")
    with TableLock(pg, d.db) as lock:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(requests.get, d.url("/v1/books"), timeout=40)
            wait_for(lambda: lock.waiting_backends() >= 1, 10, message="a blocked daemon query")
            t0 = time.monotonic()
            d.send_signal(signal.SIGTERM)
            try:
                d.wait(20)
            finally:
                took = time.monotonic() - t0
                lock.release()
            assert took <= 16, f"exited {took:.1f}s after SIGTERM; the drain bound is ~10 s"
            try:
                fut.result(timeout=10)
            except requests.RequestException:
                pass  # the stuck request is cut off: fine


def test_sigterm_idle_exits_zero_quickly(daemons):
    d = daemons.start()
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc = d.wait(10)
    assert rc == 0, d.log_tail()
    assert time.monotonic() - t0 < 3, "an idle daemon should stop at once"


def test_sigint_exits_zero(daemons):
    d = daemons.start()
    d.send_signal(signal.SIGINT)
    rc = d.wait(10)
    assert rc == 0, d.log_tail()


def test_sigterm_with_idle_keepalive_connection(daemons):
    """An idle keep-alive client must not delay the shutdown."""
    d = daemons.start()
    s = requests.Session()
    assert_status(s.get(d.url("/livez"), timeout=5), 200)  # connection stays open
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc = d.wait(12)
    s.close()
    assert rc == 0, d.log_tail()
    assert time.monotonic() - t0 < 5, f"shutdown took {time.monotonic() - t0:.1f}s with an idle connection"


# --------------------------------------------------------------------------
# systemd


@pytest.fixture
def notify():
    n = NotifySocket()
    try:
        yield n
    finally:
        n.close()


def test_sd_notify_ready_watchdog_stopping(daemons, pg, notify):
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"}
    d = daemons.start(env=env, wait=None)
    hits = notify.wait_for(lambda m: m[1] == "READY=1", 10, "READY=1")
    ready_at = hits[0][0]
    # READY=1 means listening: a request made now must succeed
    assert_status(requests.get(d.url("/livez"), timeout=3), 200)
    d.wait_healthy()

    notify.wait_for(lambda m: m[1] == "WATCHDOG=1" and m[0] >= ready_at, 3, "WATCHDOG=1 after READY=1")
    # it keeps pinging: at least two more within 3 s (interval is 0.5 s)
    t = time.monotonic()
    notify.wait_for(lambda m: m[1] == "WATCHDOG=1" and m[0] > t, 3, "a periodic WATCHDOG=1")
    t2 = time.monotonic()
    notify.wait_for(lambda m: m[1] == "WATCHDOG=1" and m[0] > t2, 3, "another periodic WATCHDOG=1")
    msgs = [m for _, m in notify.all()]
    assert any(m.startswith("STATUS=") for m in msgs), msgs

    d.send_signal(signal.SIGTERM)
    notify.wait_for(lambda m: m[1] == "STOPPING=1", 5, "STOPPING=1 after SIGTERM")
    rc = d.wait(15)
    assert rc == 0, d.log_tail()
    order = [m for _, m in notify.all() if m in ("READY=1", "STOPPING=1")]
    assert order == ["READY=1", "STOPPING=1"], order


def test_watchdog_ignores_proxy_environment(daemons, notify):
    """An http_proxy in the unit's environment must not route the daemon's
    own liveness self-check through a proxy (systemd would kill it)."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000",
           "http_proxy": dead, "HTTP_PROXY": dead, "https_proxy": dead, "all_proxy": dead}
    d = daemons.start(env=env, wait=None)
    hits = notify.wait_for(lambda m: m[1] == "READY=1", 10, "READY=1")
    ready_at = hits[0][0]
    notify.wait_for(lambda m: m[1] == "WATCHDOG=1" and m[0] > ready_at + 1, 4,
                    "WATCHDOG=1 (with http_proxy set) more than 1 s after READY=1")
    assert d.alive()


def test_sd_notify_ready_even_when_database_down(daemons, pg, notify):
    """READY=1 is about listening; it must not wait for PostgreSQL."""
    env = {"NOTIFY_SOCKET": notify.path}
    dsn = "postgresql://postgres@127.0.0.1:1/nodb?connect_timeout=1"
    d = daemons.start(dsn=dsn, env=env, wait=None)
    notify.wait_for(lambda m: m[1] == "READY=1", 10, "READY=1 with the database unreachable")
    assert_status(requests.get(d.url("/livez"), timeout=3), 200)
    r = requests.get(d.url("/health"), timeout=5)
    assert r.status_code == 503, describe(r)


def test_no_watchdog_without_watchdog_usec(daemons, notify):
    d = daemons.start(env={"NOTIFY_SOCKET": notify.path}, wait=None)
    notify.wait_for(lambda m: m[1] == "READY=1", 10, "READY=1")
    d.wait_healthy()
    time.sleep(1.2)
    assert "WATCHDOG=1" not in [m for _, m in notify.all()]


def spawn_socket_activated(daemons, pg, listener, extra_env=None):
    env = daemons.env_for(pg.dsn_uri(pg.new_db()), None, extra_env)
    env.pop("PORT", None)
    fd = listener.fileno()
    # bash becomes the daemon (exec), so $$ is the daemon's pid; move our socket to fd 3
    if fd == 3:
        script = 'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$0" "$@"'
    else:
        script = f'export LISTEN_FDS=1 LISTEN_PID=$$; exec 3<&{fd} {fd}<&-; exec "$0" "$@"'
    port = listener.getsockname()[1]
    return daemons.spawn(env, port=port, pass_fds=(fd,), argv_prefix=["/bin/bash", "-c", script])


def test_socket_activation(daemons, pg):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        d = spawn_socket_activated(daemons, pg, listener)
    finally:
        listener.close()  # the daemon holds its own copy now
    d.wait_healthy()
    book = d.api.create_book(title="socket activated")
    assert_status(d.api.get(f"/v1/books/{book['id']}"), 200)
    d.send_signal(signal.SIGTERM)
    assert d.wait(15) == 0, d.log_tail()
    assert connection_refused(d.port)


def test_socket_activation_first_request_is_served(daemons, pg):
    """The request that made systemd start the daemon is served, not a 503:
    while the first migration check and connection are under way, data
    queries wait for them (within their deadline) instead of failing."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    # the request waits in the socket's backlog before the daemon even runs
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        client.sendall(b"GET /v1/books HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            spawn_socket_activated(daemons, pg, listener)
        finally:
            listener.close()
        status, headers, body = read_http_response(client, timeout=30)
    finally:
        client.close()
    assert status == 200, (status, headers, body)


def test_socket_activation_ignores_port(daemons, pg):
    """With LISTEN_FDS the PORT variable is not used to listen elsewhere."""
    other = free_port()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        d = spawn_socket_activated(daemons, pg, listener, {"PORT": str(other)})
    finally:
        listener.close()
    d.wait_healthy()
    assert connection_refused(other), f"daemon also listens on PORT={other}"


def test_socket_activation_wrong_pid_is_ignored(daemons, pg):
    """LISTEN_PID for another process: the fds are not ours; listen on PORT."""
    port = free_port()
    env = daemons.env_for(pg.dsn_uri(pg.new_db()), port, {"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    d = daemons.spawn(env, port=port)
    d.wait_listening()
    d.wait_healthy()
