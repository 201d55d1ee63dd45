"""bookstore-worker on its own: a real redis-server, events XADDed by the test
as the orders outbox relay would, statuses read back from
bookstore:orders:status. Processing, failure by stock, skips of done orders,
notifications, the poison-message path to the dead-letter stream, the
concurrency limit, two workers sharing a group, a worker SIGKILLed mid-job
whose jobs another one finishes, metrics, and bookstore-enqueue's own errors.
(Redis faults and the lifecycle: test_worker_lifecycle.py; order-creation
jobs: test_worker_create_order.py; with the orders service:
test_worker_orders.py.)"""

import collections
import json
import os
import re
import shutil
import subprocess

import pytest
import requests

from harness import metric_value, scaled, wait_for
from worker_harness import (DONE_PREFIX, EVENTS, GROUP, NOTIFICATIONS, add_order_event, entries,
                            pending_count, records_with, run_enqueue, scrape_worker, start_worker,
                            status_sequence, statuses, wait_final_status, wait_no_pending,
                            worker_metric)
from worker_harness import redis_server, rc, workers  # noqa: F401 - fixtures


def test_order_event_processed_end_to_end(workers, redis_server, rc):
    w = start_worker(workers, redis_server, env={"NOTIFY_RECIPIENT": "shop@example.org"})
    event_id = add_order_event(rc, 41, quantity=3)

    wait_final_status(rc, [41])
    seq = statuses(rc, 41)
    assert [s["status"] for s in seq] == ["processing", "completed"], seq
    for s in seq:
        assert s["event_id"] == event_id and s["worker"] == w.consumer, s
        assert "reason" not in s, s
    # marked done after the status is published
    wait_for(lambda: rc.get(DONE_PREFIX + "41") == "completed", scaled(10), message="the done mark")
    ttl = rc.ttl(DONE_PREFIX + "41")
    assert 86400 - 60 < ttl <= 86400, ttl  # WORKER_DONE_TTL_S's default

    # the notification job: on its stream, then a structured log record
    notes = wait_for(lambda: [f for _, f in entries(rc, NOTIFICATIONS) if f.get("order_id") == "41"],
                     scaled(10), message="the notification entry")
    # status entries and notification carry the job's span (docs/events.md)
    traceparent = notes[0].pop("traceparent")
    assert notes == [{"type": "order.completed", "order_id": "41", "recipient": "shop@example.org"}]
    assert {st["traceparent"] for st in seq} == {traceparent}, seq
    rec = w.wait_for_log(lambda r: r.get("NOTIFICATION_TYPE") == "order.completed" and r.get("ORDER_ID") == "41",
                         timeout=scaled(10), message="the notification record")[0]
    assert rec["RECIPIENT"] == "shop@example.org", rec
    assert rec["TRACE_ID"] == traceparent.split("-")[1], (rec, traceparent)
    assert rec["PARENT_SPAN_ID"] == traceparent.split("-")[2], (rec, traceparent)
    # every step logged with the order id
    steps = [r.get("STEP") for r in records_with(w, ORDER_ID=41, QUEUE="process-order")]
    for step in ("inventory check", "payment", "fulfillment"):
        assert step in steps, steps

    wait_no_pending(rc, EVENTS)
    wait_no_pending(rc, NOTIFICATIONS)
    wait_for(lambda: worker_metric(w, "worker_jobs_completed_total", queue="send-notification") == 1,
             scaled(10), message="the notification job counted")
    samples = scrape_worker(w)
    assert metric_value(samples, "worker_jobs_completed_total", queue="process-order") == 1
    assert metric_value(samples, "worker_job_duration_seconds_count", queue="process-order") == 1
    assert metric_value(samples, "worker_jobs_failed_total", queue="process-order") == 0
    assert metric_value(samples, "worker_jobs_in_flight", queue="process-order") == 0
    # the gauges from XINFO GROUPS are refreshed every 2 s
    wait_for(lambda: worker_metric(w, "worker_stream_pending", queue="process-order") == 0
             and worker_metric(w, "worker_stream_lag", queue="process-order") == 0, scaled(10),
             message="pending and lag gauges at 0")


def test_done_mark_lasts_worker_done_ttl_s(workers, redis_server, rc):
    start_worker(workers, redis_server, env={"WORKER_DONE_TTL_S": 120})
    add_order_event(rc, 43)
    wait_for(lambda: rc.get(DONE_PREFIX + "43") == "completed", scaled(10), message="the done mark")
    assert 60 < rc.ttl(DONE_PREFIX + "43") <= 120
    # the outcome, the mark and the notification come together (one script)
    assert [s["status"] for s in statuses(rc, 43)] == ["processing", "completed"]
    assert [f["order_id"] for _, f in entries(rc, NOTIFICATIONS)] == ["43"]


def test_insufficient_stock_fails_the_order(workers, redis_server, rc):
    start_worker(workers, redis_server, env={"WORKER_STOCK_LIMIT": 10})
    add_order_event(rc, 7, quantity=11)
    add_order_event(rc, 8, quantity=10)

    wait_final_status(rc, [7, 8])
    failed = statuses(rc, 7)
    assert [s["status"] for s in failed] == ["processing", "failed"], failed
    assert failed[-1]["reason"].startswith("insufficient stock"), failed
    assert status_sequence(rc, 8) == ["processing", "completed"]
    wait_for(lambda: rc.get(DONE_PREFIX + "7") == "failed", scaled(10), message="the done mark")
    # a notification for the completed one only
    wait_for(lambda: len(entries(rc, NOTIFICATIONS)) == 1, scaled(10), message="one notification")
    assert entries(rc, NOTIFICATIONS)[0][1]["order_id"] == "8"
    wait_no_pending(rc, EVENTS)


def test_event_of_a_done_order_is_acknowledged_without_effect(workers, redis_server, rc):
    """The relay may publish an event twice: the second one changes nothing."""
    w = start_worker(workers, redis_server)
    add_order_event(rc, 5)
    wait_for(lambda: rc.get(DONE_PREFIX + "5") == "completed", scaled(10), message="order 5 done")
    add_order_event(rc, 5)  # a duplicate
    rc.set(DONE_PREFIX + "6", "completed")
    add_order_event(rc, 6)  # done before (by another worker, say)

    wait_for(lambda: worker_metric(w, "worker_jobs_skipped_total", queue="process-order") == 2,
             scaled(10), message="two skipped jobs")
    wait_no_pending(rc, EVENTS)
    assert status_sequence(rc, 5) == ["processing", "completed"]
    assert status_sequence(rc, 6) == []
    assert len([f for _, f in entries(rc, NOTIFICATIONS)]) == 1


def test_other_event_types_are_skipped(workers, redis_server, rc):
    w = start_worker(workers, redis_server)
    rc.xadd(EVENTS, {"type": "order.archived", "order_id": "3"})
    wait_for(lambda: worker_metric(w, "worker_jobs_skipped_total", queue="process-order") == 1,
             scaled(10), message="the skipped job")
    wait_no_pending(rc, EVENTS)
    assert statuses(rc) == []


def test_poison_message_is_dead_lettered_after_max_deliveries(workers, redis_server, rc):
    w = start_worker(workers, redis_server, env={"WORKER_MAX_DELIVERIES": 3, "WORKER_CLAIM_IDLE_MS": 300})
    bad_id = rc.xadd(EVENTS, {"type": "order.created", "order_id": "not-a-number", "quantity": "1"})
    missing_id = rc.xadd(EVENTS, {"type": "order.created", "quantity": "1",
                                  "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
    add_order_event(rc, 12)  # the poison does not hold up good events

    wait_final_status(rc, [12])
    dead = wait_for(lambda: len(entries(rc, EVENTS + ":dead")) == 2 and entries(rc, EVENTS + ":dead"),
                    scaled(20), message="two dead-lettered entries")
    by_original = {f["dead_original_id"]: f for _, f in dead}
    assert set(by_original) == {bad_id, missing_id}, dead
    bad = by_original[bad_id]
    assert bad["order_id"] == "not-a-number" and bad["type"] == "order.created", bad
    assert bad["dead_queue"] == "process-order", bad
    assert bad["dead_deliveries"] == "3", bad
    assert "malformed" in bad["dead_reason"], bad

    wait_no_pending(rc, EVENTS)
    samples = scrape_worker(w)
    assert metric_value(samples, "worker_jobs_dead_lettered_total", queue="process-order") == 2
    assert metric_value(samples, "worker_jobs_failed_total", queue="process-order", **{"class": "other"}) == 6
    assert metric_value(samples, "worker_jobs_claimed_total", queue="process-order") == 4
    # logged with the id and the reason
    logged = [r["MESSAGE"] for r in w.log_records() if "dead-lettered" in r.get("MESSAGE", "")
              and r.get("JOB_ID") == bad_id]
    assert logged and "malformed" in logged[0], logged
    # every record of the entry with a traceparent is in its trace: each
    # delivery (a job span), each claim, the dead-lettering
    mine = [r for r in w.log_records() if r.get("JOB_ID") == missing_id]
    assert {r.get("TRACE_ID") for r in mine} == {"ab" * 16}, mine
    assert {r.get("PARENT_SPAN_ID") for r in mine} == {"cd" * 8}, mine
    assert any("dead-lettered" in r["MESSAGE"] for r in mine) and \
        any("claimed" in r["MESSAGE"] for r in mine), mine
    assert statuses(rc, "not-a-number") == []


def test_concurrency_limit_per_queue(workers, redis_server, rc):
    """Never more than WORKER_CONCURRENCY entries delivered and unacknowledged
    for the worker at once (each job takes 3 × 150 ms)."""
    w = start_worker(workers, redis_server, env={"WORKER_CONCURRENCY": 3, "WORKER_STEP_DELAY_MS": 150})
    ids = list(range(100, 112))
    for o in ids:
        add_order_event(rc, o)
    peak = 0

    def all_done():
        nonlocal peak
        peak = max(peak, pending_count(rc, EVENTS))
        assert worker_metric(w, "worker_jobs_in_flight", queue="process-order") <= 3
        return all("completed" in status_sequence(rc, o) for o in ids)

    wait_for(all_done, scaled(30), interval=0.02, message="all orders completed")
    assert 1 <= peak <= 3, peak


def test_two_workers_share_the_group(workers, redis_server, rc):
    env = {"WORKER_CONCURRENCY": 2, "WORKER_STEP_DELAY_MS": 20, "WORKER_CLAIM_IDLE_MS": 30000}
    a = start_worker(workers, redis_server, env=env)
    b = start_worker(workers, redis_server, env=env)
    ids = list(range(200, 240))
    for o in ids:
        add_order_event(rc, o)

    wait_final_status(rc, ids, timeout=scaled(30))
    wait_no_pending(rc, EVENTS)
    per_worker = collections.Counter()
    for o in ids:
        seq = statuses(rc, o)
        # each order processed exactly once, by one worker
        assert [s["status"] for s in seq] == ["processing", "completed"], seq
        assert seq[0]["worker"] == seq[1]["worker"], seq
        per_worker[seq[1]["worker"]] += 1
    assert set(per_worker) == {a.consumer, b.consumer}, per_worker
    assert sum(per_worker.values()) == len(ids)
    consumers = {c["name"]: c for c in rc.xinfo_consumers(EVENTS, GROUP)}
    assert set(consumers) == {a.consumer, b.consumer}, consumers


def test_worker_killed_mid_job_another_finishes_its_jobs(workers, redis_server, rc):
    """A SIGKILLed worker's jobs stay pending; another worker claims them after
    WORKER_CLAIM_IDLE_MS and finishes each exactly once."""
    slow = start_worker(workers, redis_server, env={"WORKER_STEP_DELAY_MS": 60000})
    ids = [301, 302, 303]
    for o in ids:
        add_order_event(rc, o)
    wait_for(lambda: all(status_sequence(rc, o) == ["processing"] for o in ids), scaled(10),
             message="the three orders processing")
    slow.kill()
    assert pending_count(rc, EVENTS) == 3

    rescuer = start_worker(workers, redis_server, env={"WORKER_CLAIM_IDLE_MS": 1000})
    wait_final_status(rc, ids)
    wait_no_pending(rc, EVENTS)
    for o in ids:
        seq = statuses(rc, o)
        completed = [s for s in seq if s["status"] == "completed"]
        assert len(completed) == 1 and completed[0]["worker"] == rescuer.consumer, seq
        assert seq[0]["worker"] == slow.consumer, seq
    assert worker_metric(rescuer, "worker_jobs_claimed_total", queue="process-order") == 3
    # a delivery after the done mark: acknowledged, not done again
    assert all(rc.get(DONE_PREFIX + str(o)) == "completed" for o in ids)


def test_notification_without_recipient_uses_the_configured_one(workers, redis_server, rc):
    w = start_worker(workers, redis_server, env={"NOTIFY_RECIPIENT": "ops@example.net"})
    rc.xadd(NOTIFICATIONS, {"type": "order.completed", "order_id": "77"})
    rec = w.wait_for_log(lambda r: r.get("ORDER_ID") == "77" and "NOTIFICATION_TYPE" in r,
                         timeout=scaled(10), message="the notification record")[0]
    assert rec["RECIPIENT"] == "ops@example.net" and rec["NOTIFICATION_TYPE"] == "order.completed", rec
    wait_no_pending(rc, NOTIFICATIONS)


def test_events_published_before_the_worker_started_are_processed(workers, redis_server, rc):
    """The group starts at the beginning of the stream."""
    for o in (901, 902):
        add_order_event(rc, o)
    start_worker(workers, redis_server)
    wait_final_status(rc, [901, 902])


def test_metrics_pass_promtool(workers, redis_server, rc):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(promtool):
        pytest.fail("promtool not installed (Debian package 'prometheus')")
    w = start_worker(workers, redis_server)
    add_order_event(rc, 1)
    wait_final_status(rc, [1])
    body = requests.get(w.url("/metrics"), timeout=5).content
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    text = body.decode()
    for family in ("worker_jobs_completed_total", "worker_jobs_failed_total", "worker_job_duration_seconds",
                   "worker_jobs_in_flight", "worker_jobs_dead_lettered_total", "worker_stream_pending",
                   "worker_stream_lag", "redis_connected"):
        assert f"# TYPE {family} " in text, family
    for queue in ("process-order", "send-notification", "create-order"):
        for cls in ("4xx", "5xx", "timeout", "other"):
            assert f'worker_jobs_failed_total{{queue="{queue}",class="{cls}"}}' in text


# --------------------------------------------------------------------------
# bookstore-enqueue without a worker


@pytest.mark.parametrize("args,needle", [
    ((), "--book-id"),
    (("--book-id", "1"), "--quantity"),
    (("--book-id", "0", "--quantity", "1"), "--book-id"),
    (("--book-id", "x", "--quantity", "1"), "book-id"),
    (("--book-id", "1", "--quantity", "-2"), "--quantity"),
    (("--book-id", "1", "--quantity", "1", "--wait", "-1"), "--wait"),
    (("--book-id", "1", "--quantity", "1", "--idempotency-key", ""), "--idempotency-key"),
    (("--book-id", "1", "--quantity", "1", "extra"), "unexpected"),
    (("--nope",), "nope"),
])
def test_enqueue_usage_errors_exit_64(redis_server, rc, args, needle):
    status, out, err = run_enqueue(redis_server, *args)
    assert status == 64, (status, out, err)
    assert needle in err, err
    assert out == ""
    assert rc.exists("bookstore:order-requests") == 0


def test_enqueue_adds_a_job(redis_server, rc):
    status, out, err = run_enqueue(redis_server, "--book-id", 3, "--quantity", 2, "--idempotency-key", "k-1",
                                   "--request-id", "req-1")
    assert status == 0, err
    line = json.loads(out)
    assert line["idempotency_key"] == "k-1"
    jobs = entries(rc, "bookstore:order-requests")
    (job_id, fields), = jobs
    # a new trace, the command's span its first: the worker's job continues it
    traceparent = fields.pop("traceparent")
    assert re.fullmatch(r"00-([0-9a-f]{32})-[0-9a-f]{16}-01", traceparent), traceparent
    assert traceparent.split("-")[1] == line["trace_id"]
    assert (job_id, fields) == (line["job_id"], {"book_id": "3", "quantity": "2",
                                                 "idempotency_key": "k-1", "request_id": "req-1"})
    # a random key when none is given
    status, out, _ = run_enqueue(redis_server, "--book-id", 3, "--quantity", 1)
    assert status == 0
    key = json.loads(out)["idempotency_key"]
    assert len(key) == 36 and key != "k-1", key


def test_enqueue_wait_times_out_with_2(redis_server):
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1, "--wait", 1)
    assert status == 2, (status, out, err)
    assert "no result" in err


def test_enqueue_redis_unreachable_and_bad_environment(redis_server):
    port = redis_server.port
    redis_server.stop()
    status, _, err = run_enqueue(None, "--book-id", 1, "--quantity", 1,
                                 env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": port})
    assert status == 69 and "cannot connect" in err, (status, err)
    status, _, err = run_enqueue(None, "--book-id", 1, "--quantity", 1, env={"REDIS_PORT": "notaport"})
    assert status == 78 and "REDIS_PORT" in err, (status, err)
