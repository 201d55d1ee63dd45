"""Idempotency keys of order-creation jobs follow the rule Orders applies to
the Idempotency-Key header (1 to 255 visible ASCII characters, 0x21-0x7E):
bookstore-enqueue refuses anything else with exit status 64, and the worker
rejects a job carrying such a key (outcome rejected, no call to Orders)
instead of sending the order without its key. A key with CR/LF used to reach
libsoup, which dropped the header, so every delivery made another order."""

import pytest

from harness import ServicePair, scaled, wait_for
from worker_harness import (REQUESTS, add_job, entries, new_key, results, run_enqueue, start_worker,
                            wait_no_pending, wait_result)
from worker_harness import redis_server, rc, workers  # noqa: F401 - fixtures

EXIT_USAGE = 64

# What Orders refuses as an Idempotency-Key header; the first is the key of the bug.
BAD_KEYS = {
    "cr-lf": "k\r\nx",
    "lf": "k\nx",
    "cr": "k\rx",
    "header-injection": "k\r\nX-Injected: 1",
    "space": "a b",
    "tab": "a\tb",
    "del": "a\x7f",
    "c1": "a\u0085b",
    "non-ascii": "caf\u00e9",
    "256-chars": "k" * 256,
}


@pytest.fixture
def pair(odaemons):
    return ServicePair(odaemons)


@pytest.fixture
def book(pair):
    return pair.books_api.create_book(title="Key Book", author="K. Ey", price="3.00")


def order_posts(pair):
    return [r for r in pair.orders.access_records()
            if r.get("HTTP_METHOD") == "POST" and r.get("HTTP_PATH") == "/v1/orders"]


# --------------------------------------------------------------------------
# bookstore-enqueue


@pytest.mark.parametrize("key", list(BAD_KEYS.values()) + [""], ids=list(BAD_KEYS) + ["empty"])
def test_enqueue_refuses_a_key_orders_would_refuse(redis_server, rc, key):
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   "--idempotency-key", key)
    assert status == EXIT_USAGE, (status, out, err)
    assert out == "", out
    assert "--idempotency-key" in err and "Idempotency-Key" in err, err
    assert "\r" not in err, repr(err)  # the message does not echo the key
    assert entries(rc, REQUESTS) == []  # nothing queued


def test_enqueue_crlf_key_twice_queues_nothing(redis_server, rc):
    for _ in range(2):
        status, _, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                     "--idempotency-key", "k\r\nx")
        assert status == EXIT_USAGE, err
    assert entries(rc, REQUESTS) == []


@pytest.mark.parametrize("key", ["k", "~" * 255, "order:2024/06/01#1?x=y&z=~!"],
                         ids=["one-char", "255-chars", "punctuation"])
def test_enqueue_accepts_visible_ascii_keys(redis_server, rc, key):
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   "--idempotency-key", key)
    assert status == 0, (out, err)
    [(_, fields)] = entries(rc, REQUESTS)
    assert fields["idempotency_key"] == key


# --------------------------------------------------------------------------
# the worker, for a job put into the stream directly


def start(workers, redis_server, pair):
    return start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})


def assert_rejected_without_a_call(res, key):
    assert res["outcome"] == "rejected", res
    assert res["http_status"] == "0" and res["attempts"] == "0", res
    assert "idempotency_key" in res["error"] and "Idempotency-Key" in res["error"], res
    assert "order_id" not in res
    assert res["idempotency_key"] == key, res


@pytest.mark.parametrize("key", list(BAD_KEYS.values()) + [""], ids=list(BAD_KEYS) + ["empty"])
def test_worker_rejects_a_job_with_a_bad_key(workers, redis_server, rc, pair, book, key):
    start(workers, redis_server, pair)
    before = pair.api.total_count()
    job = add_job(rc, book["id"], 1, key=key)
    res = wait_result(rc, job)
    assert_rejected_without_a_call(res, key)
    wait_no_pending(rc, REQUESTS)  # acknowledged: never retried
    assert len(results(rc, job)) == 1
    assert pair.api.total_count() == before
    assert order_posts(pair) == []


def test_worker_rejects_a_key_with_a_nul(workers, redis_server, rc, pair, book):
    """A NUL used to cut the key short: "k\\0a" and "k\\0b" both became the key "k"."""
    start(workers, redis_server, pair)
    before = pair.api.total_count()
    jobs = [add_job(rc, book["id"], 1, key=key) for key in ("k\x00a", "k\x00b")]
    for job, shown in zip(jobs, ("k\ufffda", "k\ufffdb")):
        assert_rejected_without_a_call(wait_result(rc, job), shown)
    wait_no_pending(rc, REQUESTS)
    assert pair.api.total_count() == before
    assert order_posts(pair) == []


def test_crlf_key_delivered_twice_creates_no_order(workers, redis_server, rc, pair, book):
    """The bug: two jobs with the key "k\\r\\nx" made two orders."""
    w = start(workers, redis_server, pair)
    before = pair.api.total_count()
    jobs = [add_job(rc, book["id"], 2, key="k\r\nx") for _ in range(2)]
    for job in jobs:
        assert_rejected_without_a_call(wait_result(rc, job), "k\r\nx")
    wait_no_pending(rc, REQUESTS)
    assert pair.api.total_count() == before
    assert order_posts(pair) == []
    # one line per rejected job, and no CRITICAL from libsoup about the header
    wait_for(lambda: sum("rejected" in r.get("MESSAGE", "") for r in w.log_records()) >= 2,
             scaled(5), message="two rejection log lines")
    criticals = [r for r in w.log_records() if r.get("LEVEL") == "critical"]
    assert criticals == [], criticals


def test_good_key_still_creates_one_order(workers, redis_server, rc, pair, book):
    start(workers, redis_server, pair)
    key = new_key()
    first = wait_result(rc, add_job(rc, book["id"], 1, key=key))
    second = wait_result(rc, add_job(rc, book["id"], 1, key=key))
    assert first["outcome"] == "created" and second["outcome"] == "replayed", (first, second)
    assert first["order_id"] == second["order_id"]


def test_job_without_a_key_still_uses_the_job_id(workers, redis_server, rc, pair, book):
    start(workers, redis_server, pair)
    job = add_job(rc, book["id"], 1)
    res = wait_result(rc, job)
    assert res["outcome"] == "created" and res["idempotency_key"] == f"job-{job}", res
