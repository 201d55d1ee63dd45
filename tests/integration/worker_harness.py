"""Helpers for the bookstore-worker tests: start the worker (a harness.Daemon
whose port is WORKER_METRICS_PORT), run bookstore-enqueue, and read the
streams of docs/events.md.

The binaries are $BOOKSTORE_BUILD_DIR/workers/bookstore-worker and
.../workers/bookstore-enqueue; a missing one fails the test."""

import os
import subprocess
import uuid

import pytest
import requests

from harness import (Daemon, DaemonManager, build_dir, daemon_base_env, free_port, metric_value,
                     parse_metrics, scaled, wait_for)
from redis_server import RedisServer

GROUP = "bookstore-workers"
EVENTS = "bookstore:orders:events"
STATUS = "bookstore:orders:status"
NOTIFICATIONS = "bookstore:notifications"
REQUESTS = "bookstore:order-requests"
RESULTS = "bookstore:order-results"
DONE_PREFIX = "bookstore:orders:done:"

# Small delays and idle times so that retries, claims and dead letters take
# about a second, not the production half minute.
FAST = {
    "WORKER_BLOCK_MS": 200,
    "WORKER_CLAIM_IDLE_MS": 1000,
    "WORKER_STEP_DELAY_MS": 1,
    "WORKER_CONCURRENCY": 5,
}


def _binary(name):
    path = build_dir() / "workers" / name
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{name} not found or not executable: {path}\n"
                    f"build it first (ninja -C {build_dir()}) or set BOOKSTORE_BUILD_DIR", pytrace=False)
    return path


def worker_binary():
    return _binary("bookstore-worker")


def enqueue_binary():
    return _binary("bookstore-enqueue")


def worker_env(redis=None, port=None, extra=None, fast=True):
    """The environment of a bookstore-worker: REDIS_* of `redis`, the metrics
    port, FAST settings (unless fast=False), then `extra` (None unsets)."""
    env = daemon_base_env()
    env["BIND_ADDRESS"] = "127.0.0.1"
    if port is not None:
        env["WORKER_METRICS_PORT"] = str(port)
    if redis is not None:
        env.update(redis.env("worker"))
    if fast:
        env.update({k: str(v) for k, v in FAST.items()})
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def spawn_worker(manager, env, port=None, args=(), name=None):
    """Start the process only (for exit-status tests)."""
    d = Daemon(worker_binary(), manager.logdir, env, port, args=args, name=name, kind="worker")
    manager.daemons.append(d)
    return d.spawn()


def start_worker(manager, redis, env=None, name=None, wait="healthy", port=None):
    """A bookstore-worker on a free metrics port, consumer name `name`
    (default: the daemon's name), registered with `manager` so that teardown
    SIGTERMs it and checks exit status 0.

    wait: "healthy" (GET /health 200: Redis connected), "listening", None."""
    attempts = 1 if port else 3
    for attempt in range(attempts):
        p = port or free_port()
        d = Daemon(worker_binary(), manager.logdir, None, p, name=name, kind="worker")
        extra = {"WORKER_NAME": d.name}
        extra.update(env or {})
        d.env = worker_env(redis, p, extra)
        d.consumer = d.env.get("WORKER_NAME")
        manager.daemons.append(d)
        d.spawn()
        try:
            if wait in ("healthy", "listening"):
                d.wait_listening()
            if wait == "healthy":
                d.wait_healthy()
            return d
        except AssertionError:
            if d.alive() or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def scrape_worker(worker):
    resp = requests.get(worker.url("/metrics"), timeout=5)
    assert resp.status_code == 200, resp.text
    return parse_metrics(resp.text)


def worker_metric(worker, name, **labels):
    return metric_value(scrape_worker(worker), name, **labels)


def health(worker):
    resp = requests.get(worker.url("/health"), timeout=5)
    return resp.status_code, resp.json()


# --------------------------------------------------------------------------
# streams


def entries(r, stream):
    """[(id, {fields})] of a whole stream."""
    return r.xrange(stream, "-", "+")


def statuses(r, order_id=None):
    """The status messages (fields + "id"), optionally of one order."""
    out = []
    for entry_id, fields in entries(r, STATUS):
        if order_id is None or fields.get("order_id") == str(order_id):
            out.append(dict(fields, id=entry_id))
    return out


def status_sequence(r, order_id):
    return [s["status"] for s in statuses(r, order_id)]


def add_order_event(r, order_id, quantity=1, book_id=1, **extra):
    """An order.created event as the orders outbox relay publishes it."""
    fields = {"type": "order.created", "outbox_id": str(order_id), "order_id": str(order_id),
              "book_id": str(book_id), "book_title": "T", "book_author": "A",
              "quantity": str(quantity), "unit_price": "10.00",
              "total_price": f"{10 * quantity}.00", "created_at": "2026-01-01T00:00:00.000000Z"}
    fields.update({k: str(v) for k, v in extra.items()})
    return r.xadd(EVENTS, fields)


def wait_final_status(r, order_ids, timeout=None, status=("completed", "failed")):
    """Every order in order_ids has a final status; {order_id: [statuses]}."""
    ids = [str(o) for o in order_ids]

    def done():
        seqs = {o: status_sequence(r, o) for o in ids}
        return seqs if all(any(s in status for s in seq) for seq in seqs.values()) else None

    return wait_for(done, timeout or scaled(20), interval=0.05,
                    message=f"a final status for orders {ids}")


def pending_count(r, stream):
    """Entries delivered to the group and not acknowledged (0 without a group)."""
    try:
        return r.xpending(stream, GROUP)["pending"]
    except Exception:  # noqa: BLE001 - no stream/group yet
        return 0


def wait_no_pending(r, stream, timeout=None):
    wait_for(lambda: pending_count(r, stream) == 0, timeout or scaled(15),
             message=f"no pending entries on {stream}")


def add_job(r, book_id, quantity, key=None, request_id=None, **extra):
    fields = {"book_id": str(book_id), "quantity": str(quantity)}
    if key is not None:
        fields["idempotency_key"] = key
    if request_id is not None:
        fields["request_id"] = request_id
    fields.update({k: str(v) for k, v in extra.items()})
    return r.xadd(REQUESTS, fields)


def results(r, job_id=None):
    out = []
    for entry_id, fields in entries(r, RESULTS):
        if job_id is None or fields.get("job_id") == job_id:
            out.append(dict(fields, id=entry_id))
    return out


def wait_result(r, job_id, timeout=None, outcome=None):
    """The first result of the job (with that outcome, if given)."""
    def found():
        for res in results(r, job_id):
            if outcome is None or res["outcome"] == outcome:
                return res
        return None

    return wait_for(found, timeout or scaled(20), interval=0.05,
                    message=f"a result for job {job_id}" + (f" with outcome {outcome}" if outcome else ""))


def new_key():
    return f"test-{uuid.uuid4()}"


def records_with(worker, **fields):
    """The worker's JSON log records whose fields include `fields`."""
    return [rec for rec in worker.log_records()
            if all(rec.get(k) == str(v) for k, v in fields.items())]


def run_enqueue(redis, *args, env=None, timeout=60):
    """Run bookstore-enqueue; (exit status, stdout, stderr)."""
    e = daemon_base_env()
    if redis is not None:
        e.update(redis.env("enqueue"))
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    proc = subprocess.run([str(enqueue_binary()), *map(str, args)], env=e, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


# --------------------------------------------------------------------------
# fixtures (imported by the test modules)


@pytest.fixture
def redis_server():
    """A fresh redis-server for one test."""
    with RedisServer() as server:
        yield server
        server.assert_no_denials()


@pytest.fixture
def rc(redis_server):
    """A python redis client of redis_server (decoded strings)."""
    return redis_server.client()


@pytest.fixture
def workers(tmp_path):
    """A DaemonManager for worker processes (no PostgreSQL needed); every
    worker still running at teardown gets SIGTERM and must exit 0."""
    with DaemonManager(None, tmp_path) as manager:
        yield manager
