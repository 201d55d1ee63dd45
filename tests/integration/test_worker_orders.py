"""The whole event flow with the real three daemons: Books, Orders (its outbox
relay publishing bookstore:orders:events, its consumer applying
bookstore:orders:status) and the worker, on real PostgreSQL and Redis.

An order goes pending → completed; Redis down while orders are created (all
201) and restarted: every order completes; the worker SIGKILLed mid-job and
another started: every order completes once in effect (one completed row in
order_status_history); two workers on one group."""

import pytest

from harness import REPO_ROOT, ServicePair, metric_value, scaled, wait_for
from worker_harness import (EVENTS, scrape_worker, start_worker, status_sequence, statuses,
                            wait_no_pending)
from worker_harness import redis_server, workers  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(
    not (REPO_ROOT / "orders" / "orders-status.c").exists(),
    reason="the orders side of the event flow (orders/orders-status.c) has not landed yet")


@pytest.fixture
def pair(odaemons, redis_server):
    return ServicePair(odaemons, orders_env=redis_server.env("orders"))


@pytest.fixture
def book(pair):
    return pair.books_api.create_book(title="Event Book", author="E. Vent", price="7.25")


def order_status(pair, order_id):
    resp = pair.api.get(f"/v1/orders/{order_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["status"]


def wait_statuses(pair, order_ids, status="completed", timeout=None):
    wait_for(lambda: all(order_status(pair, o) == status for o in order_ids), timeout or scaled(30),
             message=f"orders {order_ids} {status}")


def history(pair, status=None):
    """{order_id: [status, ...]} from order_status_history, oldest first."""
    where = f"WHERE status = '{status}'" if status else ""
    out = pair.orders_manager.cluster.psql(
        f"SELECT order_id, status FROM order_status_history {where} ORDER BY id", db=pair.orders_db)
    rows = {}
    for line in out.split():
        order_id, st = line.split("|")
        rows.setdefault(int(order_id), []).append(st)
    return rows


def test_order_goes_pending_to_completed(workers, redis_server, pair, book):
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    order = pair.api.order(book["id"], 2)
    assert order["status"] == "pending", order

    wait_statuses(pair, [order["id"]])
    assert history(pair)[order["id"]] == ["processing", "completed"]
    w.wait_for_log(lambda r: r.get("NOTIFICATION_TYPE") == "order.completed"
                   and r.get("ORDER_ID") == str(order["id"]), timeout=scaled(10),
                   message="the notification of the order")
    wait_for(lambda: metric_value(scrape_worker(w), "worker_jobs_completed_total",
                                  queue="send-notification") == 1, scaled(10),
             message="the notification counted")
    samples = scrape_worker(w)
    assert metric_value(samples, "worker_jobs_completed_total", queue="process-order") == 1
    assert metric_value(samples, "worker_job_duration_seconds_count", queue="process-order") == 1


def test_order_over_the_stock_limit_fails(workers, redis_server, pair, book):
    start_worker(workers, redis_server, env={"WORKER_STOCK_LIMIT": 5})
    order = pair.api.order(book["id"], 6)
    wait_statuses(pair, [order["id"]], status="failed")
    assert history(pair)[order["id"]] == ["processing", "failed"]


def test_orders_created_while_redis_is_down_all_complete(workers, redis_server, pair, book):
    start_worker(workers, redis_server)
    first = pair.api.order(book["id"], 1)
    wait_statuses(pair, [first["id"]])

    redis_server.stop()
    ids = [pair.api.order(book["id"], 1)["id"] for _ in range(5)]  # all 201 (create_order checks)
    assert all(order_status(pair, o) == "pending" for o in ids)
    redis_server.start()  # same port, empty: the relay publishes the events again

    wait_statuses(pair, ids, timeout=scaled(45))
    rows = history(pair, "completed")
    assert all(rows.get(o) == ["completed"] for o in ids + [first["id"]]), rows


def test_worker_killed_mid_job_every_order_completes_once(workers, redis_server, pair, book):
    slow = start_worker(workers, redis_server, env={"WORKER_STEP_DELAY_MS": 60000})
    ids = [pair.api.order(book["id"], 1)["id"] for _ in range(3)]
    wait_statuses(pair, ids, status="processing")
    slow.kill()

    start_worker(workers, redis_server, env={"WORKER_CLAIM_IDLE_MS": 1000})
    wait_statuses(pair, ids)
    rc = redis_server.client()
    wait_no_pending(rc, EVENTS)
    rows = history(pair)
    for o in ids:
        # a repeated "processing" from the second worker adds no row
        assert rows[o] == ["processing", "completed"], rows


def test_two_workers_share_the_orders(workers, redis_server, pair, book):
    env = {"WORKER_CONCURRENCY": 2, "WORKER_STEP_DELAY_MS": 20, "WORKER_CLAIM_IDLE_MS": 30000}
    a = start_worker(workers, redis_server, env=env)
    b = start_worker(workers, redis_server, env=env)
    ids = [pair.api.order(book["id"], 1)["id"] for _ in range(20)]
    wait_statuses(pair, ids)
    rc = redis_server.client()
    done_by = {statuses(rc, o)[-1]["worker"] for o in ids}
    assert done_by == {a.consumer, b.consumer}, done_by
    for o in ids:
        assert status_sequence(rc, o) == ["processing", "completed"], statuses(rc, o)
    rows = history(pair)
    assert all(rows[o] == ["processing", "completed"] for o in ids), rows
