"""bookstore-worker's lifecycle and Redis faults: exit 78 on bad configuration
(naming the variable), --help/--version, sd_notify READY/STOPPING, SIGTERM
with jobs in flight (they finish and are acknowledged, exit 0), Redis down at
start, killed and restarted, frozen with SIGSTOP."""

import signal
import threading

import pytest

from harness import EX_CONFIG, NotifySocket, free_port, metric_value, project_version, scaled, wait_for
from worker_harness import (EVENTS, GROUP, add_order_event, health, pending_count, scrape_worker,
                            spawn_worker, start_worker, status_sequence, statuses, wait_final_status,
                            worker_env)
from worker_harness import redis_server, rc, workers  # noqa: F401 - fixtures

CONNECTIONS = ("commands", "reader-process-order", "reader-send-notification", "reader-create-order")


def connected_gauges(worker):
    samples = scrape_worker(worker)
    return {c: metric_value(samples, "redis_connected", connection=c) for c in CONNECTIONS}


# --------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("variable,value", [
    ("WORKER_CONCURRENCY", "0"),
    ("WORKER_CONCURRENCY", "abc"),
    ("WORKER_CONCURRENCY", "1001"),
    ("WORKER_METRICS_PORT", "0"),
    ("WORKER_METRICS_PORT", "65536"),
    ("REDIS_PORT", "x"),
    ("REDIS_PORT", "0"),
    ("REDIS_COMMAND_TIMEOUT_MS", "5"),
    ("WORKER_NAME", "two words"),
    ("WORKER_NAME", "x" * 201),
    ("WORKER_BLOCK_MS", "1"),
    ("WORKER_CLAIM_IDLE_MS", "10"),
    ("WORKER_MAX_DELIVERIES", "0"),
    ("ORDERS_API_URL", "ftp://127.0.0.1:8082"),
    ("ORDERS_API_URL", "not a url"),
    ("ORDERS_HTTP_RETRIES", "21"),
    ("ORDERS_HTTP_TIMEOUT_MS", "50"),
    ("WORKER_STEP_DELAY_MS", "-1"),
    ("WORKER_STOCK_LIMIT", "many"),
    ("WORKER_DONE_TTL_S", "59"),
    ("NOTIFY_RECIPIENT", "a\tb"),
    ("BIND_ADDRESS", "localhost"),
])
def test_bad_configuration_exits_78(workers, variable, value):
    d = spawn_worker(workers, worker_env(port=free_port(), extra={variable: value}))
    rc_ = d.wait(scaled(10))
    assert rc_ == EX_CONFIG, d.log_tail()
    assert variable in d.stderr_text(), d.log_tail()


def test_help_and_version(workers):
    d = spawn_worker(workers, worker_env(), args=["--help"])
    assert d.wait(scaled(10)) == 0
    out = d.stdout_text()
    for variable in ("REDIS_HOST", "WORKER_CONCURRENCY", "WORKER_NAME", "WORKER_METRICS_PORT",
                     "ORDERS_API_URL", "WORKER_CLAIM_IDLE_MS", "WORKER_MAX_DELIVERIES"):
        assert variable in out, out
    d = spawn_worker(workers, worker_env(), args=["--version"])
    assert d.wait(scaled(10)) == 0
    assert d.stdout_text().strip() == f"bookstore-worker {project_version()}"


# --------------------------------------------------------------------------
# systemd and SIGTERM


@pytest.fixture
def notify():
    n = NotifySocket()
    try:
        yield n
    finally:
        n.close()


def test_sigterm_finishes_jobs_in_flight(workers, redis_server, rc, notify):
    """Stop reading, let the jobs in flight finish and be acknowledged,
    STOPPING=1, exit 0."""
    w = start_worker(workers, redis_server, env={"WORKER_STEP_DELAY_MS": 400, "NOTIFY_SOCKET": notify.path})
    notify.wait_for(lambda m: m[1] == "READY=1", scaled(10), "READY=1")
    ids = [61, 62, 63]
    for o in ids:
        add_order_event(rc, o)
    wait_for(lambda: all(status_sequence(rc, o) == ["processing"] for o in ids), scaled(10),
             message="three orders in flight")

    w.send_signal(signal.SIGTERM)
    notify.wait_for(lambda m: m[1] == "STOPPING=1", scaled(5), "STOPPING=1")
    # racing the stop: either read in that instant (then taken back and
    # processed before the exit) or left for the next worker; never stranded
    # as pending
    add_order_event(rc, 64)
    assert w.wait(scaled(20)) == 0, w.log_tail()
    for o in ids:
        assert status_sequence(rc, o) == ["processing", "completed"], statuses(rc, o)
    assert status_sequence(rc, 64) in ([], ["processing", "completed"])
    assert pending_count(rc, EVENTS) == 0
    messages = [r.get("MESSAGE", "") for r in w.log_records()]
    assert any("stop requested" in m for m in messages), messages
    assert any("finishing 3 jobs in flight" in m for m in messages), messages

    # the next worker takes an event left unread
    start_worker(workers, redis_server)
    add_order_event(rc, 65)
    wait_final_status(rc, [64, 65])
    assert status_sequence(rc, 64) == ["processing", "completed"]


def test_sigterm_while_redis_delivers_to_the_closing_reader(workers, redis_server, rc, notify):
    """Redis frozen while an event is added and the worker stops: on thaw it
    hands the event to the blocked read whose connection the stop closed
    (usually before it sees the close). The worker takes it back (CLIENT KILL
    of its reader, XPENDING for itself, XCLAIM) and processes it before it
    exits: nothing is left pending for WORKER_CLAIM_IDLE_MS."""
    w = start_worker(workers, redis_server,
                     env={"WORKER_BLOCK_MS": 60000, "NOTIFY_SOCKET": notify.path})
    notify.wait_for(lambda m: m[1] == "READY=1", scaled(10), "READY=1")
    wait_for(lambda: rc.info("clients")["blocked_clients"] == 3, scaled(5),
             message="three readers blocked in XREADGROUP")
    adder_client = redis_server.client()
    adder_client.ping()  # connected before the freeze: its XADD is read first on thaw
    redis_server.freeze()
    try:
        adder = threading.Thread(target=add_order_event, args=(adder_client, 70))
        adder.start()
        w.send_signal(signal.SIGTERM)
        notify.wait_for(lambda m: m[1] == "STOPPING=1", scaled(5), "STOPPING=1")
    finally:
        redis_server.thaw()
    adder.join(scaled(10))
    assert w.wait(scaled(20)) == 0, w.log_tail()
    assert pending_count(rc, EVENTS) == 0, rc.xpending_range(EVENTS, "bookstore-workers", "-", "+", 10)
    assert status_sequence(rc, 70) in ([], ["processing", "completed"]), statuses(rc, 70)


def test_sigterm_leaves_older_pending_entries_to_the_claimers(workers, redis_server, rc):
    """The take-back at stop is for what the closing read was handed, not for
    entries this consumer name got long before (an earlier process under
    systemd's fixed name, or a failed job waiting for its retry): those stay
    pending for the claimers and their idle time."""
    rc.xgroup_create(EVENTS, GROUP, id="0", mkstream=True)
    add_order_event(rc, 80)
    assert rc.xreadgroup(GROUP, "stale-consumer", {EVENTS: ">"}, count=1)
    wait_for(lambda: rc.xpending_range(EVENTS, GROUP, "-", "+", 1)[0]["time_since_delivered"] > 2500,
             scaled(10), message="the entry idle for 2.5 s")
    w = start_worker(workers, redis_server, name="stale-consumer",
                     env={"WORKER_BLOCK_MS": 60000, "WORKER_CLAIM_IDLE_MS": 600000})
    wait_for(lambda: rc.info("clients")["blocked_clients"] == 3, scaled(5),
             message="three readers blocked in XREADGROUP")
    w.send_signal(signal.SIGTERM)
    assert w.wait(scaled(20)) == 0, w.log_tail()
    assert status_sequence(rc, 80) == [], statuses(rc, 80)
    pending = rc.xpending_range(EVENTS, GROUP, "-", "+", 10)
    assert [(p["consumer"], p["times_delivered"]) for p in pending] == [("stale-consumer", 1)], pending


def test_sigterm_when_idle_exits_at_once(workers, redis_server):
    w = start_worker(workers, redis_server, env={"WORKER_BLOCK_MS": 60000})
    w.send_signal(signal.SIGTERM)
    assert w.wait(scaled(5)) == 0, w.log_tail()


def test_sigterm_while_redis_holds_a_read_in_client_pause(workers, redis_server, rc):
    """A read that arrives during CLIENT PAUSE WRITE (as in a failover) waits
    unblocked. A stop now must neither wait for that read's BLOCK time nor
    send CLIENT UNBLOCK for it: Redis 7.0 aborts on that ("Unknown btype in
    replyToBlockedClientTimedOut")."""
    w = start_worker(workers, redis_server, env={"WORKER_BLOCK_MS": 60000})
    readers = [c for c in rc.client_list() if c["name"].startswith("reader-")]
    assert len(readers) == 3, readers

    def blocked():
        info = rc.info("clients")
        return info["blocked_clients"], info["clients_in_timeout_table"]

    wait_for(lambda: blocked() == (3, 3), scaled(5), message="three readers blocked in XREADGROUP")
    rc.execute_command("CLIENT", "PAUSE", int(scaled(3) * 1000), "WRITE")
    rc.client_unblock(readers[0]["id"])  # its BLOCK ends; its next XREADGROUP waits in the pause
    wait_for(lambda: blocked() == (3, 2), scaled(5), message="one read held by the pause")
    w.send_signal(signal.SIGTERM)
    assert w.wait(scaled(5)) == 0, w.log_tail()
    assert rc.ping()
    rc.execute_command("CLIENT", "UNPAUSE")


# --------------------------------------------------------------------------
# Redis faults


def test_redis_down_at_start_then_up(workers, redis_server, rc):
    port = redis_server.port
    redis_server.stop()
    w = start_worker(workers, redis_server, wait="listening")
    status, body = health(w)
    assert status == 503 and body == {"status": "unhealthy", "services": {"redis": "unhealthy"}}, body
    assert set(connected_gauges(w).values()) == {0}
    redis_server.start()
    assert redis_server.port == port
    w.wait_healthy(scaled(15))
    add_order_event(rc, 5)
    wait_final_status(rc, [5])


def test_redis_killed_and_restarted_under_a_running_worker(workers, redis_server, rc):
    w = start_worker(workers, redis_server)
    assert health(w) == (200, {"status": "healthy", "services": {"redis": "healthy"}})
    assert set(connected_gauges(w).values()) == {1}
    add_order_event(rc, 1)
    wait_final_status(rc, [1])

    redis_server.kill()
    wait_for(lambda: health(w)[0] == 503, scaled(10), message="/health 503 with Redis down")
    wait_for(lambda: set(connected_gauges(w).values()) == {0}, scaled(10), message="redis_connected 0")

    redis_server.start()  # same port, empty: the groups are created again
    w.wait_healthy(scaled(15))
    wait_for(lambda: set(connected_gauges(w).values()) == {1}, scaled(10), message="redis_connected 1")
    rc = redis_server.client()
    add_order_event(rc, 2)
    wait_final_status(rc, [2])

    # the outage is logged once per connection, and so is the recovery
    lost = [r["MESSAGE"] for r in w.log_records() if "Redis (commands)" in r.get("MESSAGE", "")
            and ("lost" in r["MESSAGE"] or "unavailable" in r["MESSAGE"])]
    assert len(lost) == 1, lost
    assert w.alive()


def test_redis_frozen_commands_time_out_then_recover(workers, redis_server, rc):
    w = start_worker(workers, redis_server, env={"REDIS_COMMAND_TIMEOUT_MS": 500, "WORKER_BLOCK_MS": 200})
    add_order_event(rc, 1)
    wait_final_status(rc, [1])

    redis_server.freeze()
    try:
        wait_for(lambda: health(w)[0] == 503, scaled(15), message="/health 503 with Redis frozen")
        wait_for(lambda: any("in time" in r.get("MESSAGE", "") or "within" in r.get("MESSAGE", "")
                             for r in w.log_records()), scaled(10), message="a timeout logged")
    finally:
        redis_server.thaw()
    w.wait_healthy(scaled(20))
    add_order_event(rc, 2)
    wait_final_status(rc, [2])
    assert w.alive()


def test_redis_password(workers, tmp_path):
    from redis_server import RedisServer
    with RedisServer(password="s3cret") as server:
        client = server.client()
        w = start_worker(workers, server)
        add_order_event(client, 9)
        wait_final_status(client, [9])
        assert w.stop() == 0, w.log_tail()
        bad = start_worker(workers, server, env={"REDIS_PASSWORD": "wrong"}, wait="listening")
        wait_for(lambda: any("AUTH" in r.get("MESSAGE", "") for r in bad.log_records()), scaled(10),
                 message="the refused AUTH logged")
        assert health(bad)[0] == 503
