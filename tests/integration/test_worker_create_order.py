"""Order-creation jobs (queue create-order on bookstore:order-requests) against
the real Books and Orders daemons: a job creates one order even when
delivered twice; a 4xx is never retried; a Books outage is retried and the
order is created once Books is back; a job that keeps failing is
dead-lettered with a result saying so; timeouts are classed as such;
bookstore-enqueue --wait end to end."""

import json
import socket

import pytest

from harness import ServicePair, metric_value, scaled, wait_for
from worker_harness import (REQUESTS, add_job, entries, new_key, pending_count, results,
                            run_enqueue, scrape_worker, start_worker, wait_no_pending,
                            wait_result, worker_metric)
from worker_harness import redis_server, rc, workers  # noqa: F401 - fixtures


@pytest.fixture
def pair(odaemons):
    """Books + Orders for one test (a short circuit-breaker cooldown, so that
    Orders calls Books again soon after an outage)."""
    return ServicePair(odaemons, orders_env={"BOOKS_CIRCUIT_COOLDOWN_MS": 300,
                                             "BOOKS_TIMEOUT_MS": 500})


@pytest.fixture
def book(pair):
    return pair.books_api.create_book(title="Worker Book", author="W. Orker", price="12.50")


def order_posts(pair, request_id=None):
    """POST /v1/orders access records of the Orders daemon."""
    return [r for r in pair.orders.access_records()
            if r.get("HTTP_METHOD") == "POST" and r.get("HTTP_PATH") == "/v1/orders"
            and (request_id is None or r.get("REQUEST_ID") == request_id)]


def wait_for_posts(pair, request_id, at_least=1):
    """order_posts(pair, request_id) once it holds at least `at_least`
    records: a record is written as the response leaves, and the worker (and
    so the test) can act on the response first."""
    def enough():
        posts = order_posts(pair, request_id)
        return posts if len(posts) >= at_least else None

    return wait_for(enough, scaled(5), message=f"{at_least} POST(s) of {request_id} in the access log")


def start(workers, redis_server, pair, **env):
    return start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url(), **env})


def test_job_creates_an_order(workers, redis_server, rc, pair, book):
    w = start(workers, redis_server, pair)
    key = new_key()
    job = add_job(rc, book["id"], 2, key=key, request_id="job-req-1")
    res = wait_result(rc, job)
    assert res["outcome"] == "created", res
    assert res["http_status"] == "201" and res["attempts"] == "1" and res["idempotency_key"] == key, res
    assert "error" not in res
    order = pair.api.get(f"/v1/orders/{res['order_id']}").json()
    assert order["book_id"] == book["id"] and order["quantity"] == 2, order
    wait_no_pending(rc, REQUESTS)
    assert worker_metric(w, "worker_jobs_completed_total", queue="create-order") == 1
    # the job's request id reached Orders
    assert len(wait_for_posts(pair, "job-req-1")) == 1


def test_job_delivered_twice_creates_one_order(workers, redis_server, rc, pair, book):
    w = start(workers, redis_server, pair)
    before = pair.api.total_count()
    key = new_key()
    first = add_job(rc, book["id"], 1, key=key)
    a = wait_result(rc, first)
    second = add_job(rc, book["id"], 1, key=key)  # the same job again
    b = wait_result(rc, second)
    assert a["outcome"] == "created" and b["outcome"] == "replayed", (a, b)
    assert a["order_id"] == b["order_id"]
    assert pair.api.total_count() == before + 1
    wait_no_pending(rc, REQUESTS)
    assert worker_metric(w, "worker_jobs_completed_total", queue="create-order") == 2


def test_job_without_key_uses_the_job_id(workers, redis_server, rc, pair, book):
    start(workers, redis_server, pair)
    job = add_job(rc, book["id"], 1)
    res = wait_result(rc, job)
    assert res["outcome"] == "created" and res["idempotency_key"] == f"job-{job}", res


def test_unknown_book_is_rejected_and_not_retried(workers, redis_server, rc, pair):
    w = start(workers, redis_server, pair, WORKER_CLAIM_IDLE_MS=300)
    job = add_job(rc, 987654, 1, key=new_key(), request_id="job-404")
    res = wait_result(rc, job)
    assert res["outcome"] == "rejected", res
    assert res["http_status"] == "404" and res["attempts"] == "1", res
    assert "NOT_FOUND" in res["error"], res
    assert "order_id" not in res
    wait_no_pending(rc, REQUESTS)  # acknowledged: nothing left to redeliver
    assert len(results(rc, job)) == 1
    assert len(wait_for_posts(pair, "job-404")) == 1
    samples = scrape_worker(w)
    assert metric_value(samples, "worker_jobs_failed_total", queue="create-order", **{"class": "4xx"}) == 1
    assert metric_value(samples, "worker_jobs_claimed_total", queue="create-order") == 0


def test_invalid_job_is_rejected_without_a_call(workers, redis_server, rc, pair):
    start(workers, redis_server, pair)
    job = add_job(rc, "abc", 1, request_id="job-invalid")
    res = wait_result(rc, job)
    assert res["outcome"] == "rejected" and res["http_status"] == "0" and res["attempts"] == "0", res
    assert "book_id" in res["error"]
    wait_no_pending(rc, REQUESTS)
    assert order_posts(pair, "job-invalid") == []


def test_books_outage_is_retried_until_it_ends(workers, redis_server, rc, pair, book):
    w = start(workers, redis_server, pair, ORDERS_HTTP_RETRIES=1, WORKER_MAX_DELIVERIES=1000,
              WORKER_CLAIM_IDLE_MS=300)
    pair.books.stop()
    job = add_job(rc, book["id"], 3, key=new_key(), request_id="job-outage")
    # attempts fail with 503 from Orders; the job stays pending and comes back
    wait_for(lambda: worker_metric(w, "worker_jobs_claimed_total", queue="create-order") >= 1,
             scaled(20), message="the failed job claimed again")
    samples = scrape_worker(w)
    assert metric_value(samples, "worker_jobs_failed_total", queue="create-order", **{"class": "5xx"}) >= 1
    assert results(rc, job) == []
    assert pending_count(rc, REQUESTS) == 1

    pair.restart_books()
    res = wait_result(rc, job, timeout=scaled(30))
    assert res["outcome"] == "created", res
    assert pair.api.get(f"/v1/orders/{res['order_id']}").status_code == 200
    wait_no_pending(rc, REQUESTS)
    wait_for_posts(pair, "job-outage", at_least=2)
    assert len(results(rc, job)) == 1


def test_job_failing_every_time_is_dead_lettered(workers, redis_server, rc):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    w = start_worker(workers, redis_server, env={
        "ORDERS_API_URL": f"http://127.0.0.1:{port}", "ORDERS_HTTP_RETRIES": 0,
        "WORKER_MAX_DELIVERIES": 2, "WORKER_CLAIM_IDLE_MS": 300})
    key = new_key()
    job = add_job(rc, 1, 1, key=key)
    res = wait_result(rc, job, outcome="dead-lettered")
    assert res["idempotency_key"] == key and res["attempts"] == "2" and res["http_status"] == "0", res
    assert res["error"], res
    dead = entries(rc, REQUESTS + ":dead")
    assert len(dead) == 1 and dead[0][1]["dead_original_id"] == job, dead
    assert dead[0][1]["idempotency_key"] == key
    wait_no_pending(rc, REQUESTS)
    samples = scrape_worker(w)
    assert metric_value(samples, "worker_jobs_dead_lettered_total", queue="create-order") == 1
    assert metric_value(samples, "worker_jobs_failed_total", queue="create-order", **{"class": "other"}) == 2


def test_orders_not_answering_is_a_timeout(workers, redis_server, rc):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (backlog), never answers
    try:
        w = start_worker(workers, redis_server, env={
            "ORDERS_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}", "ORDERS_HTTP_RETRIES": 1,
            "ORDERS_HTTP_TIMEOUT_MS": 200, "WORKER_CLAIM_IDLE_MS": 30000})
        add_job(rc, 1, 1, key=new_key())
        wait_for(lambda: worker_metric(w, "worker_jobs_failed_total", queue="create-order",
                                       **{"class": "timeout"}) == 1, scaled(10),
                 message="a failure of class timeout")
        assert pending_count(rc, REQUESTS) == 1  # not acknowledged: retried later
        assert any("retrying in" in r.get("MESSAGE", "") for r in w.log_records())
    finally:
        silent.close()


def test_enqueue_wait_end_to_end(workers, redis_server, rc, pair, book):
    start(workers, redis_server, pair)
    status, out, err = run_enqueue(redis_server, "--book-id", book["id"], "--quantity", 2,
                                   "--idempotency-key", "enq-1", "--wait", 20)
    assert status == 0, (out, err)
    job_line, result_line = [json.loads(line) for line in out.splitlines()]
    assert job_line["idempotency_key"] == "enq-1"
    assert result_line["job_id"] == job_line["job_id"] and result_line["outcome"] == "created", result_line
    assert isinstance(result_line["order_id"], int) and result_line["http_status"] == 201, result_line
    order_id = result_line["order_id"]

    status, out, _ = run_enqueue(redis_server, "--book-id", book["id"], "--quantity", 2,
                                 "--idempotency-key", "enq-1", "--wait", 20)
    assert status == 0
    replay = json.loads(out.splitlines()[1])
    assert replay["outcome"] == "replayed" and replay["order_id"] == order_id, replay

    status, out, _ = run_enqueue(redis_server, "--book-id", 987654, "--quantity", 1, "--wait", 20)
    assert status == 1, out
    rejected = json.loads(out.splitlines()[1])
    assert rejected["outcome"] == "rejected" and rejected["http_status"] == 404, rejected
