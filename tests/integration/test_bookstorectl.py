"""bookstorectl (ctl/, bookstorectl(8)) against a live stack: real
PostgreSQL, Redis with its ACL users (bookstorectl logs in as bookstore-ctl,
and any command beyond that user's rules fails the test), Books, Orders and
the worker. The configuration is a temporary directory of env files, as
/etc/bookstore holds them, named by BOOKSTORE_CONFIG_DIR. Every command is
run with --json and its output parsed; systemd and the journal are absent
here, which the output must say."""

import concurrent.futures
import json
import os
import re
import shutil
import socket
import subprocess

import pytest

from harness import ServicePair, ctl_binary, daemon_base_env, project_version, scaled, wait_for
from redis_server import RedisServer, credentials_dir
from worker_harness import (REQUESTS, add_job, new_key, start_worker, wait_final_status,
                            wait_result)
from worker_harness import workers  # noqa: F401 - fixture

FAST_ORDERS = {"ORDERS_RELAY_INTERVAL_MS": 200, "ORDERS_CLAIM_IDLE_MS": 1000}
EX_USAGE = 64
DEAD_REQUESTS = REQUESTS + ":dead"


@pytest.fixture
def redis_srv():
    with RedisServer("ctl") as server:
        yield server
        server.assert_no_denials()


@pytest.fixture
def pair(redis_srv, odaemons):
    return ServicePair(odaemons, orders_env={**redis_srv.env("orders"), **FAST_ORDERS})


@pytest.fixture
def worker(workers, redis_srv, pair):  # noqa: F811 - fixture
    return start_worker(workers, redis_srv, env={"ORDERS_API_URL": pair.orders.url()})


def write_config(path, pair, redis_srv, worker=None, worker_port=None):
    """books.env, orders.env, worker.env and redis/ctl.password, as the
    packages and bookstore-setup-redis leave them."""
    path.mkdir(exist_ok=True)
    cluster = pair.orders_manager.cluster
    (path / "books.env").write_text(
        "# Books\n"
        f"BOOKS_DB_DSN={cluster.dsn_uri(pair.books_db)}\n"
        f"PORT={pair.books.port}\nBIND_ADDRESS=127.0.0.1\n")
    (path / "orders.env").write_text(
        f'DATABASE_URL="{cluster.dsn_kv(pair.orders_db)}"\n'
        f"PORT={pair.orders.port}\n"
        f"REDIS_HOST=127.0.0.1\nREDIS_PORT={redis_srv.port}\n")
    (path / "worker.env").write_text(
        f"  WORKER_METRICS_PORT = {worker.port if worker else worker_port}\n"
        f"REDIS_HOST=127.0.0.1\nREDIS_PORT={redis_srv.port}\n; a comment\n")
    (path / "redis").mkdir(exist_ok=True)
    shutil.copy(credentials_dir() / "ctl.password", path / "redis" / "ctl.password")
    return path


@pytest.fixture
def config(tmp_path, pair, redis_srv, worker):
    return write_config(tmp_path / "etc", pair, redis_srv, worker)


def ctl(config_dir, *args, timeout=60):
    """(exit status, stdout, stderr) of bookstorectl with that configuration."""
    env = {k: v for k, v in daemon_base_env().items() if not k.startswith("BOOKSTORE_")}
    env["BOOKSTORE_CONFIG_DIR"] = str(config_dir)
    proc = subprocess.run([str(ctl_binary()), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def ctl_json(config_dir, *args, status=0):
    rc, out, err = ctl(config_dir, "--json", *args)
    assert rc == status, f"bookstorectl {' '.join(map(str, args))}: exit {rc}\n{out}\n{err}"
    return json.loads(out)


# --------------------------------------------------------------------------
# status


def test_status_of_a_healthy_stack_then_with_redis_stopped(config, pair, redis_srv, worker):
    wait_for(lambda: pair.api.get("/health").json()["services"]["redis"] == "healthy", scaled(10),
             message="Orders connected to Redis")
    doc = ctl_json(config, "status")
    assert doc["healthy"] is True, doc
    assert doc["units"] == {"available": False, "reason": "systemd not running"}
    services = {s["name"]: s for s in doc["services"]}
    assert set(services) == {"books", "orders", "worker"}
    for s in services.values():
        assert s["healthy"] and s["http_status"] == 200 and s["version"] == project_version(), s
    assert services["orders"]["checks"] == {"database": "healthy", "books": "healthy",
                                            "redis": "healthy"}
    assert {d["name"]: d["reachable"] for d in doc["databases"]} == {"books": True, "orders": True}
    assert doc["redis"]["reachable"] and doc["redis"]["user"].startswith("bookstore-ctl"), doc
    streams = {s["stream"]: s for s in doc["redis"]["streams"]}
    assert set(streams) >= {"bookstore:orders:events", "bookstore:orders:status",
                            "bookstore:order-requests", DEAD_REQUESTS}
    groups = {g["name"]: g for g in streams["bookstore:orders:events"]["groups"]}
    assert groups["bookstore-workers"]["pending"] == 0 and groups["bookstore-workers"]["lag"] == 0
    assert doc["outbox"] == {"pending": 0, "oldest_pending_seconds": 0, "error": None}
    rc, out, _ = ctl(config, "status")
    assert rc == 0 and "systemd not running" in out and out.rstrip().endswith("healthy"), out

    redis_srv.stop()
    doc = ctl_json(config, "--timeout", "2", "status", status=1)
    assert doc["healthy"] is False
    assert doc["redis"]["reachable"] is False and "Redis" in doc["redis"]["error"], doc["redis"]
    assert {d["name"]: d["reachable"] for d in doc["databases"]} == {"books": True, "orders": True}
    rc, out, _ = ctl(config, "status")
    assert rc == 1 and "UNHEALTHY" in out and "Redis" in out, out
    redis_srv.start()


def test_status_is_unhealthy_when_a_service_is_down(config, pair):
    pair.books.stop()
    doc = ctl_json(config, "--timeout", "2", "status", status=1)
    books = next(s for s in doc["services"] if s["name"] == "books")
    assert books["healthy"] is False and books["http_status"] == 0 and books["error"], books


def test_status_only_checks_the_services_installed(tmp_path, pair, redis_srv):
    etc = write_config(tmp_path / "etc", pair, redis_srv, worker_port=1)
    (etc / "worker.env").unlink()
    doc = ctl_json(etc, "status")
    assert [s["name"] for s in doc["services"]] == ["books", "orders"]


# --------------------------------------------------------------------------
# order ID


def test_order_shows_the_order_and_its_timeline(config, pair, redis_srv, worker):
    book = pair.books_api.create_book(title="Ctl Book", author="C. Tl", price="12.99")
    order = pair.api.create_order(book["id"], 3).json()
    wait_final_status(redis_srv.client(), [order["id"]])
    wait_for(lambda: pair.api.get(f"/v1/orders/{order['id']}").json()["status"] == "completed",
             scaled(15), message="the order completed")
    doc = ctl_json(config, "order", order["id"])
    assert doc["order"]["id"] == order["id"] and doc["order"]["status"] == "completed", doc
    assert doc["order"]["total_price"] == "38.97"  # exact, as Orders wrote it
    steps = [(e["stream"], e.get("type") or e.get("status")) for e in doc["timeline"]]
    assert steps[0] == ("bookstore:orders:events", "order.created"), steps
    assert ("bookstore:orders:status", "processing") in steps
    assert ("bookstore:orders:status", "completed") in steps
    assert steps.index(("bookstore:orders:status", "processing")) < \
        steps.index(("bookstore:orders:status", "completed"))
    assert re.fullmatch(r"[0-9a-f]{32}", doc["trace_id"]), doc["trace_id"]
    assert doc["journal"]["available"] is False and doc["journal"]["reason"], doc["journal"]
    rc, out, _ = ctl(config, "order", order["id"])
    assert rc == 0 and "completed" in out and "journal: unavailable" in out, out

    missing = ctl_json(config, "order", 987654, status=1)
    assert missing["order"] is None and missing["timeline"] == []
    assert ctl(config, "order", "abc")[0] == EX_USAGE


# --------------------------------------------------------------------------
# dead letters


def dead_letter_jobs(workers, redis_srv, pair, n):  # noqa: F811 - fixture
    """n order-creation jobs dead-lettered while Orders is down; their keys."""
    start_worker(workers, redis_srv, env={
        "ORDERS_API_URL": pair.orders.url(), "ORDERS_HTTP_RETRIES": 0,
        "WORKER_MAX_DELIVERIES": 1, "WORKER_CLAIM_IDLE_MS": 300})
    book = pair.books_api.create_book(title="Dead Book", author="D. Ead", price="5.00")
    pair.orders.stop()
    r = redis_srv.client()
    keys = [new_key() for _ in range(n)]
    jobs = [add_job(r, book["id"], 1, key=k) for k in keys]
    for job in jobs:
        wait_result(r, job, outcome="dead-lettered")
    return jobs, keys


def test_dead_letters_list_show_retry_once_and_drop(workers, redis_srv, pair, tmp_path):  # noqa: F811
    jobs, keys = dead_letter_jobs(workers, redis_srv, pair, 3)
    config = write_config(tmp_path / "etc", pair, redis_srv, worker_port=1)
    listed = ctl_json(config, "dead-letters", "list")["entries"]
    assert [e["dead_original_id"] for e in listed] == jobs
    for e, key in zip(listed, keys):
        assert e["stream"] == DEAD_REQUESTS and e["idempotency_key"] == key
        assert e["dead_queue"] == "create-order" and e["dead_reason"], e
    assert ctl_json(config, "dead-letters", "list", "notifications")["entries"] == []
    rc, out, _ = ctl(config, "dead-letters", "list")
    assert rc == 0 and keys[0] in out and listed[0]["dead_reason"] in out, out

    first, second, third = (e["id"] for e in listed)
    shown = ctl_json(config, "dead-letters", "show", first)
    assert shown["book_id"] and shown["quantity"] == "1" and shown["dead_deliveries"] == "1", shown
    assert ctl_json(config, "dead-letters", "show", "1-0", status=1)["error"]

    # the cause fixed, the job goes back and succeeds
    pair.restart_orders()
    retried = ctl_json(config, "dead-letters", "retry", first)
    assert retried["stream"] == REQUESTS and retried["from"] == DEAD_REQUESTS
    res = wait_result(redis_srv.client(), retried["new_id"], outcome="created")
    assert res["idempotency_key"] == keys[0]
    assert pair.api.get(f"/v1/orders/{res['order_id']}").status_code == 200
    # exactly once: a second retry of the same id finds nothing
    again = ctl_json(config, "dead-letters", "retry", first, status=1)
    assert "not found" in again["error"] or "no dead letter" in again["error"], again

    # two retries at once: one puts the job back, the other finds it gone
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: ctl(config, "--json", "dead-letters", "retry", second),
                             range(4)))
    assert sorted(rc for rc, _, _ in runs) == [0, 1, 1, 1], runs
    new_id = next(json.loads(out)["new_id"] for rc, out, _ in runs if rc == 0)
    assert wait_result(redis_srv.client(), new_id, outcome="created")
    requeued = [fields for _, fields in redis_srv.client().xrange(REQUESTS, "-", "+")
                if fields.get("idempotency_key") == keys[1]]
    assert len(requeued) == 2 and not any(k.startswith("dead_") for f in requeued for k in f)

    dropped = ctl_json(config, "dead-letters", "drop", third)
    assert dropped == {"dropped": third, "from": DEAD_REQUESTS}
    assert ctl_json(config, "dead-letters", "drop", third, status=1)["error"]
    assert ctl_json(config, "dead-letters", "list")["entries"] == []
    assert ctl(config, "dead-letters", "retry")[0] == EX_USAGE
    assert ctl(config, "dead-letters", "list", "nowhere")[0] == EX_USAGE


# --------------------------------------------------------------------------
# outbox and idempotency keys


def test_outbox_backlog_while_redis_is_away(config, pair, redis_srv):
    assert ctl_json(config, "outbox") == {"pending": 0, "oldest_pending_seconds": 0}
    redis_srv.stop()
    book = pair.books_api.create_book(title="Outbox Book", author="O. Box", price="1.00")
    for _ in range(3):
        pair.api.create_order(book["id"], 1)
    doc = ctl_json(config, "outbox")
    assert doc["pending"] == 3 and doc["oldest_pending_seconds"] >= 0, doc
    rc, out, _ = ctl(config, "outbox")
    assert rc == 0 and "3 events waiting" in out, out
    redis_srv.start()
    wait_for(lambda: ctl_json(config, "outbox")["pending"] == 0, scaled(20),
             message="the outbox drained")


def test_outbox_with_the_database_unreachable(tmp_path, pair, redis_srv):
    etc = write_config(tmp_path / "etc", pair, redis_srv, worker_port=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (etc / "orders.env").write_text(f"DATABASE_URL=postgresql://x@127.0.0.1:{port}/orders_db\n")
    doc = ctl_json(etc, "outbox", status=69)
    assert "orders database" in doc["error"], doc


def test_idempotency_purge(config, pair):
    book = pair.books_api.create_book(title="Key Book", author="K. Ey", price="2.00")
    old = pair.api.create_order(book["id"], 1, key="ctl-old-key").json()
    pair.api.create_order(book["id"], 1, key="ctl-new-key")
    # younger than Orders' own 24-hour retention: its first purge, which may
    # run any moment after start, must not be the one that deletes the key
    pair.orders_manager.cluster.psql(
        "UPDATE idempotency_keys SET created_at = now() - interval '2 hours' "
        "WHERE key = 'ctl-old-key'", db=pair.orders_db)
    assert ctl_json(config, "idempotency", "purge", "--older-than", "1h") == \
        {"deleted": 1, "older_than_seconds": 3600}
    assert ctl_json(config, "idempotency", "purge", "--older-than=1d")["deleted"] == 0
    keys = pair.orders_manager.cluster.psql("SELECT key FROM idempotency_keys ORDER BY key",
                                            db=pair.orders_db).split()
    assert keys == ["ctl-new-key"]
    # the order stays, without its key
    assert pair.api.get(f"/v1/orders/{old['id']}").status_code == 200
    rc, out, _ = ctl(config, "idempotency", "purge", "--older-than", "90s")
    assert rc == 0 and "deleted 0 idempotency keys" in out, out
    for bad in (["purge"], ["purge", "--older-than", "soon"], ["purge", "--older-than", "-1h"],
                ["vacuum"]):
        assert ctl(config, "idempotency", *bad)[0] == EX_USAGE, bad


@pytest.fixture
def silent_ports():
    """Three loopback ports that complete the TCP handshake (the kernel's
    backlog) and never answer a byte: a server that hangs."""
    sockets = []
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        sockets.append(s)
    yield [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()


def test_a_server_that_never_answers_is_a_timeout_not_a_hang(tmp_path, silent_ports):
    """Books, Orders, the worker's /health, PostgreSQL and Redis all accept the
    connection and then say nothing: every command ends by its --timeout with
    the failure named, the ones that need the server with a non-zero status."""
    http, pg, redis = silent_ports
    etc = tmp_path / "etc"
    (etc / "redis").mkdir(parents=True)
    (etc / "redis" / "ctl.password").write_text("never-checked\n")
    (etc / "books.env").write_text(
        f"BOOKS_DB_DSN=postgresql://books@127.0.0.1:{pg}/books_db\nPORT={http}\n")
    (etc / "orders.env").write_text(
        f"DATABASE_URL=postgresql://orders@127.0.0.1:{pg}/orders_db\nPORT={http}\n"
        f"REDIS_HOST=127.0.0.1\nREDIS_PORT={redis}\n")
    (etc / "worker.env").write_text(
        f"WORKER_METRICS_PORT={http}\nREDIS_HOST=127.0.0.1\nREDIS_PORT={redis}\n")

    # the subprocess timeout is the hang detector: each wait is bounded by
    # --timeout 1, and status has a handful of them
    rc, out, err = ctl(etc, "--json", "--timeout", "1", "status", timeout=scaled(60))
    assert rc == 1, (rc, out, err)
    doc = json.loads(out)
    assert doc["healthy"] is False
    assert all(not s["healthy"] and s["error"] for s in doc["services"]), doc["services"]
    assert all(not d["reachable"] for d in doc["databases"]), doc["databases"]
    assert doc["redis"]["reachable"] is False and doc["redis"]["error"], doc["redis"]
    # named as what it is, not as hiredis's EAGAIN ("Resource temporarily unavailable")
    assert "no answer within 1000 ms" in doc["redis"]["error"], doc["redis"]

    for args, field in ((["outbox"], "error"), (["order", "1"], "order_error"),
                        (["dead-letters", "list"], "error"),
                        (["idempotency", "purge", "--older-than", "1d"], "error")):
        rc, out, err = ctl(etc, "--json", "--timeout", "1", *args, timeout=scaled(30))
        assert rc == 69 and json.loads(out)[field], (args, rc, out, err)


def test_usage_and_configuration_errors(tmp_path):
    assert ctl(tmp_path, "frobnicate")[0] == EX_USAGE
    assert ctl(tmp_path)[0] == EX_USAGE
    rc, out, _ = ctl(tmp_path, "--version")
    assert rc == 0 and out.strip() == f"bookstorectl {project_version()}"
    assert ctl(tmp_path, "--timeout", "0", "status")[0] == EX_USAGE
    (tmp_path / "orders.env").mkdir()  # unreadable as a file
    rc, out, err = ctl(tmp_path, "--json", "status")
    assert rc == 78 and json.loads(out)["exit_status"] == 78, (out, err)
    assert not os.access(tmp_path / "nothing", os.F_OK)
