"""bookstore-orders process lifecycle: exit 78 on bad configuration (naming the
variable), accepted boundary values, --help/--version, SIGTERM/SIGINT exit 0
(draining an order in flight), sd_notify, socket activation."""

import concurrent.futures
import signal
import socket
import time

import pytest
import requests

from harness import (EX_CONFIG, BooksStub, NotifySocket, OrdersApi, assert_status,
                     connection_refused, daemon_base_env, describe, free_port, project_version, scaled)


@pytest.fixture
def books(odaemons):
    """A real Books daemon for the Orders under test."""
    return odaemons.start()


def spawn_orders(odaemons, env, args=()):
    return odaemons.spawn(env, port=None, args=args, kind="orders")


def run_expect_exit(odaemons, env, args=(), timeout=None):
    d = spawn_orders(odaemons, env, args)
    rc = d.wait(timeout or scaled(10))
    return d, rc


# --------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("name,overrides,variable", [
    ("missing DATABASE_URL", {"DATABASE_URL": None}, "DATABASE_URL"),
    ("empty DATABASE_URL", {"DATABASE_URL": ""}, "DATABASE_URL"),
    ("garbage uri DATABASE_URL", {"DATABASE_URL": "postgresql://["}, "DATABASE_URL"),
    ("garbage kv DATABASE_URL", {"DATABASE_URL": "this is not a dsn"}, "DATABASE_URL"),
    ("missing BOOKS_SERVICE_URL", {"BOOKS_SERVICE_URL": None}, "BOOKS_SERVICE_URL"),
    ("empty BOOKS_SERVICE_URL", {"BOOKS_SERVICE_URL": ""}, "BOOKS_SERVICE_URL"),
    ("BOOKS_SERVICE_URL not a url", {"BOOKS_SERVICE_URL": "not a url"}, "BOOKS_SERVICE_URL"),
    ("BOOKS_SERVICE_URL ftp", {"BOOKS_SERVICE_URL": "ftp://127.0.0.1:8001"}, "BOOKS_SERVICE_URL"),
    ("BOOKS_SERVICE_URL no host", {"BOOKS_SERVICE_URL": "http://"}, "BOOKS_SERVICE_URL"),
    ("BOOKS_SERVICE_URL bad port", {"BOOKS_SERVICE_URL": "http://127.0.0.1:99999"}, "BOOKS_SERVICE_URL"),
    ("REDIS_PORT abc", {"REDIS_PORT": "abc"}, "REDIS_PORT"),
    ("REDIS_PORT 0", {"REDIS_PORT": "0"}, "REDIS_PORT"),
    ("REDIS_PORT 65536", {"REDIS_PORT": "65536"}, "REDIS_PORT"),
    ("REDIS_PORT -1", {"REDIS_PORT": "-1"}, "REDIS_PORT"),
    ("REDIS_PORT 6379x", {"REDIS_PORT": "6379x"}, "REDIS_PORT"),
    ("BOOKS_TIMEOUT_MS abc", {"BOOKS_TIMEOUT_MS": "abc"}, "BOOKS_TIMEOUT_MS"),
    ("BOOKS_TIMEOUT_MS 99", {"BOOKS_TIMEOUT_MS": "99"}, "BOOKS_TIMEOUT_MS"),
    ("BOOKS_TIMEOUT_MS 60001", {"BOOKS_TIMEOUT_MS": "60001"}, "BOOKS_TIMEOUT_MS"),
    ("BOOKS_TIMEOUT_MS -1", {"BOOKS_TIMEOUT_MS": "-1"}, "BOOKS_TIMEOUT_MS"),
    ("threshold 0", {"BOOKS_CIRCUIT_FAILURE_THRESHOLD": "0"}, "BOOKS_CIRCUIT_FAILURE_THRESHOLD"),
    ("threshold 1001", {"BOOKS_CIRCUIT_FAILURE_THRESHOLD": "1001"}, "BOOKS_CIRCUIT_FAILURE_THRESHOLD"),
    ("threshold abc", {"BOOKS_CIRCUIT_FAILURE_THRESHOLD": "abc"}, "BOOKS_CIRCUIT_FAILURE_THRESHOLD"),
    ("cooldown 99", {"BOOKS_CIRCUIT_COOLDOWN_MS": "99"}, "BOOKS_CIRCUIT_COOLDOWN_MS"),
    ("cooldown 3600001", {"BOOKS_CIRCUIT_COOLDOWN_MS": "3600001"}, "BOOKS_CIRCUIT_COOLDOWN_MS"),
    ("cooldown abc", {"BOOKS_CIRCUIT_COOLDOWN_MS": "abc"}, "BOOKS_CIRCUIT_COOLDOWN_MS"),
    ("pool size 0", {"ORDERS_DB_POOL_SIZE": "0"}, "ORDERS_DB_POOL_SIZE"),
    ("pool size 65", {"ORDERS_DB_POOL_SIZE": "65"}, "ORDERS_DB_POOL_SIZE"),
    ("pool size abc", {"ORDERS_DB_POOL_SIZE": "abc"}, "ORDERS_DB_POOL_SIZE"),
    ("db timeout abc", {"ORDERS_DB_TIMEOUT_MS": "abc"}, "ORDERS_DB_TIMEOUT_MS"),
    ("db timeout negative", {"ORDERS_DB_TIMEOUT_MS": "-5"}, "ORDERS_DB_TIMEOUT_MS"),
    ("retention 23", {"IDEMPOTENCY_KEY_RETENTION_HOURS": "23"}, "IDEMPOTENCY_KEY_RETENTION_HOURS"),
    ("retention 8761", {"IDEMPOTENCY_KEY_RETENTION_HOURS": "8761"}, "IDEMPOTENCY_KEY_RETENTION_HOURS"),
    ("retention abc", {"IDEMPOTENCY_KEY_RETENTION_HOURS": "abc"}, "IDEMPOTENCY_KEY_RETENTION_HOURS"),
    ("max connections 0", {"BOOKS_MAX_CONNECTIONS": "0"}, "BOOKS_MAX_CONNECTIONS"),
    ("max connections abc", {"BOOKS_MAX_CONNECTIONS": "abc"}, "BOOKS_MAX_CONNECTIONS"),
    ("port abc", {"PORT": "abc"}, "PORT"),
    ("port 70000", {"PORT": "70000"}, "PORT"),
    ("request timeout abc", {"HTTP_REQUEST_TIMEOUT_MS": "abc"}, "HTTP_REQUEST_TIMEOUT_MS"),
    ("bind address garbage", {"BIND_ADDRESS": "not-an-address"}, "BIND_ADDRESS"),
])
def test_invalid_config_exits_78(odaemons, pg, name, overrides, variable):
    env = odaemons.env_for_orders(pg.dsn_uri("postgres"), f"http://127.0.0.1:{free_port()}", free_port(),
                                  overrides)
    d, rc = run_expect_exit(odaemons, env)
    assert rc == EX_CONFIG, f"{name}: exit status {rc}, expected 78\n{d.log_tail()}"
    assert variable in d.stderr_text(), f"{name}: no log line names {variable}\n{d.log_tail()}"


def test_config_error_is_one_json_line(odaemons, pg):
    env = odaemons.env_for_orders(None, "http://127.0.0.1:1", free_port())
    d, rc = run_expect_exit(odaemons, env)
    assert rc == EX_CONFIG
    recs = [r for r in d.log_records() if "DATABASE_URL" in r.get("MESSAGE", "")]
    assert len(recs) == 1, f"expected one JSON log record naming DATABASE_URL\n{d.log_tail()}"
    assert d.non_json_lines() == [], d.non_json_lines()


@pytest.mark.parametrize("bounds", ["min", "max"])
def test_boundary_values_are_accepted(odaemons, books, bounds):
    env = {
        "min": {"BOOKS_TIMEOUT_MS": 100, "BOOKS_CIRCUIT_FAILURE_THRESHOLD": 1, "BOOKS_CIRCUIT_COOLDOWN_MS": 100,
                "REDIS_PORT": 1, "IDEMPOTENCY_KEY_RETENTION_HOURS": 24, "ORDERS_DB_POOL_SIZE": 1,
                "BOOKS_MAX_CONNECTIONS": 1},
        "max": {"BOOKS_TIMEOUT_MS": 60000, "BOOKS_CIRCUIT_FAILURE_THRESHOLD": 1000,
                "BOOKS_CIRCUIT_COOLDOWN_MS": 3600000, "REDIS_PORT": 65535, "IDEMPOTENCY_KEY_RETENTION_HOURS": 8760,
                "ORDERS_DB_POOL_SIZE": 64, "REDIS_HOST": "localhost", "REDIS_PASSWORD": "s3cret"},
    }[bounds]
    orders = odaemons.start_orders(books=books, env=env)
    assert orders.alive()
    if bounds == "max":
        book = books.api.create_book(title="bounds")
        OrdersApi(orders.url()).order(book["id"], 1)
        assert "s3cret" not in orders.stderr_text(), "the Redis password must not be logged"


@pytest.mark.parametrize("form", ["kv-dsn", "books-localhost"])
def test_url_forms(odaemons, pg, books, form):
    db = pg.new_db()
    if form == "kv-dsn":
        orders = odaemons.start_orders(books=books, dsn=pg.dsn_kv(db))
    else:
        orders = odaemons.start_orders(books_url=f"http://localhost:{books.port}", db=db)
    book = books.api.create_book(title=f"via {form}")
    OrdersApi(orders.url()).order(book["id"], 1)
    tables = pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", db=db)
    assert int(tables.strip()) >= 1, "the schema must be created in the database named in DATABASE_URL"


def test_help_and_version(odaemons):
    env = daemon_base_env()
    d, rc = run_expect_exit(odaemons, env, args=["--help"])
    out = d.stdout_text() + d.stderr_text()
    assert rc == 0, f"--help exited {rc}\n{out}"
    assert d.stdout_text().strip(), "--help printed nothing on stdout"
    assert "DATABASE_URL" in out and "BOOKS_SERVICE_URL" in out, f"--help should name the variables:\n{out}"
    d, rc = run_expect_exit(odaemons, env, args=["--version"])
    assert rc == 0, f"--version exited {rc}"
    version = project_version()
    assert version and version in d.stdout_text(), f"--version printed {d.stdout_text()!r}, expected {version}"


def test_default_port_is_8082(odaemons, pg, books):
    if not connection_refused(8082):
        pytest.skip("port 8082 is in use here")
    env = odaemons.env_for_orders(pg.dsn_uri(pg.new_db()), books.url(), None)
    d = odaemons.spawn(env, port=8082, kind="orders")
    try:
        d.wait_listening(timeout=scaled(10))
    except AssertionError:
        if "8082" in d.stderr_text() and not d.alive():
            pytest.skip("8082 was taken meanwhile")
        raise
    d.wait_healthy()


# --------------------------------------------------------------------------
# signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero(odaemons, books, sig):
    orders = odaemons.start_orders(books=books)
    assert_status(requests.get(orders.url("/v1/orders"), timeout=scaled(5)), 200)
    t0 = time.monotonic()
    orders.send_signal(sig)
    rc = orders.wait(scaled(10))
    assert rc == 0, f"exit status {rc} after {sig!r}\n{orders.log_tail()}"
    assert time.monotonic() - t0 < scaled(3), "an idle daemon should stop at once"
    assert orders.sanitizer_reports() == []


def test_sigterm_drains_an_order_in_flight(odaemons):
    """An order waiting on a slow Books when SIGTERM arrives is completed (201)
    before the daemon exits 0."""
    # the daemon drains for at most 10 s: keep Books' delay well inside that,
    # however slow the daemon runs (valgrind)
    with BooksStub(mode="slow", delay=min(scaled(1.5), 4.0)) as stub:
        orders = odaemons.start_orders(books_url=stub.url(), wait="database",
                                       env={"BOOKS_TIMEOUT_MS": min(int(scaled(8) * 1000), 60000)})
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(requests.post, orders.url("/v1/orders"), json={"book_id": 1, "quantity": 2},
                              timeout=scaled(15))
            deadline = time.monotonic() + scaled(5)
            while stub.book_request_count() < 1:
                assert time.monotonic() < deadline, "the order never reached the stub"
                time.sleep(0.02)
            orders.send_signal(signal.SIGTERM)
            resp = fut.result(timeout=scaled(15))
        assert_status(resp, 201)
        assert resp.json()["quantity"] == 2, describe(resp)
        rc = orders.wait(scaled(15))
        assert rc == 0, orders.log_tail()


# --------------------------------------------------------------------------
# systemd


def test_sd_notify_ready_and_stopping(odaemons, books):
    notify = NotifySocket()
    try:
        orders = odaemons.start_orders(books=books, env={"NOTIFY_SOCKET": notify.path}, wait=None)
        notify.wait_for(lambda m: m[1] == "READY=1", scaled(10), "READY=1")
        assert_status(requests.get(orders.url("/livez"), timeout=scaled(3)), 200)
        orders.send_signal(signal.SIGTERM)
        notify.wait_for(lambda m: m[1] == "STOPPING=1", scaled(5), "STOPPING=1 after SIGTERM")
        assert orders.wait(scaled(15)) == 0, orders.log_tail()
    finally:
        notify.close()


def test_sd_notify_ready_even_when_books_down(odaemons):
    notify = NotifySocket()
    try:
        orders = odaemons.start_orders(books_url=f"http://127.0.0.1:{free_port()}",
                                       env={"NOTIFY_SOCKET": notify.path}, wait=None)
        notify.wait_for(lambda m: m[1] == "READY=1", scaled(10), "READY=1 with Books unreachable")
        assert_status(requests.get(orders.url("/livez"), timeout=scaled(3)), 200)
    finally:
        notify.close()


def test_socket_activation(odaemons, pg, books):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        env = odaemons.env_for_orders(pg.dsn_uri(pg.new_db()), books.url(), None)
        env.pop("PORT", None)
        fd = listener.fileno()
        script = ('export LISTEN_FDS=1 LISTEN_PID=$$; exec "$0" "$@"' if fd == 3 else
                  f'export LISTEN_FDS=1 LISTEN_PID=$$; exec 3<&{fd} {fd}<&-; exec "$0" "$@"')
        d = odaemons.spawn(env, port=listener.getsockname()[1], pass_fds=(fd,),
                           argv_prefix=["/bin/bash", "-c", script], kind="orders")
    finally:
        listener.close()
    d.wait_healthy()
    book = books.api.create_book(title="socket activated")
    OrdersApi(d.url()).order(book["id"], 1)
    d.send_signal(signal.SIGTERM)
    assert d.wait(scaled(15)) == 0, d.log_tail()


def test_daemon_names(odaemons, books):
    orders = odaemons.start_orders(books=books)
    assert orders.name.startswith("orders-") and books.name.startswith("books-"), (orders.name, books.name)
    assert orders.binary.name == "bookstore-orders" and books.binary.name == "bookstore-books"
