"""Idempotency-Key on POST /v1/orders: replays return the original order
without calling Books, a different body under the same key is a 409,
concurrent requests with one key create exactly one order, and a key is only
spent by a request that created an order."""

import concurrent.futures
import threading
import time
import uuid

import pytest
import requests

from harness import (ServicePair, assert_error, assert_order_shape, assert_status, describe, metric_value,
                     raw_money, scaled, scrape, wait_for)


def new_key():
    return f"key-{uuid.uuid4()}"


def replayed(resp):
    return resp.headers.get("Idempotent-Replayed", "").strip().lower() == "true"


def post(api, body, key=None, headers=None, timeout=None):
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["Idempotency-Key"] = key
    return requests.post(api.url("/v1/orders"), json=body, headers=hdrs, timeout=timeout or scaled(10))


@pytest.fixture(scope="module")
def book(shared_pair_service):
    return shared_pair_service.current().books_api.create_book(title="Idempotent", author="Key Holder",
                                                              price="12.99")


def test_replay_returns_the_original_order(shared_pair, book):
    api = shared_pair.api
    key = new_key()
    body = {"book_id": book["id"], "quantity": 2}
    before_count = api.total_count()
    before = scrape(shared_pair.orders)

    first = post(api, body, key)
    assert_status(first, 201)
    order = first.json()
    assert_order_shape(order)
    assert not replayed(first), f"the first request is not a replay{describe(first)}"

    for header_name in ("Idempotency-Key", "idempotency-key"):
        again = requests.post(api.url("/v1/orders"), json=body, headers={header_name: key}, timeout=scaled(10))
        assert_status(again, 201)
        assert replayed(again), f"expected Idempotent-Replayed: true{describe(again)}"
        assert again.json() == order, describe(again)
        assert raw_money(again, "total_price") == "25.98", describe(again)
        assert again.headers.get("Location") == f"/v1/orders/{order['id']}", describe(again)

    assert api.total_count() == before_count + 1
    after = scrape(shared_pair.orders)
    assert metric_value(after, "orders_created_total") - metric_value(before, "orders_created_total") == 1
    assert metric_value(after, "orders_idempotent_replays_total") - \
        metric_value(before, "orders_idempotent_replays_total") == 2


def test_replay_does_not_call_books(shared_pair):
    """The replay answers from the stored order: the book's later changes do not
    show, and Books sees no request."""
    books, api = shared_pair.books_api, shared_pair.api
    bk = books.create_book(title="Before", price="3.00")
    key = new_key()
    body = {"book_id": bk["id"], "quantity": 3}
    first = post(api, body, key)
    assert_status(first, 201)
    assert_status(books.put(f"/v1/books/{bk['id']}", json={"title": "After", "price": "4.00"}), 200)

    rid = f"replay-{uuid.uuid4()}"
    again = post(api, body, key, headers={"X-Request-ID": rid})
    assert_status(again, 201)
    assert replayed(again), describe(again)
    assert again.json() == first.json()
    assert raw_money(again, "unit_price") == "3.00" and raw_money(again, "total_price") == "9.00", describe(again)
    shared_pair.orders.wait_for_log(lambda r: r.get("REQUEST_ID") == rid and "HTTP_STATUS" in r,
                                    timeout=scaled(5), message="the replay's access record")
    time.sleep(0.2)
    assert not [r for r in shared_pair.books.log_records() if r.get("REQUEST_ID") == rid], \
        "a replay must not call Books"


@pytest.mark.parametrize("change", [{"quantity": 3}, {"book_id": "other"}], ids=["quantity", "book_id"])
def test_same_key_different_body_is_409(shared_pair, book, change):
    api = shared_pair.api
    other = shared_pair.books_api.create_book(title="Other")
    key = new_key()
    body = {"book_id": book["id"], "quantity": 2}
    first = post(api, body, key)
    assert_status(first, 201)
    count = api.total_count()
    before = scrape(shared_pair.orders)

    different = dict(body)
    different.update(change)
    if different["book_id"] == "other":
        different["book_id"] = other["id"]
    assert_error(post(api, different, key), 409, "IDEMPOTENCY_CONFLICT")
    assert api.total_count() == count
    after = scrape(shared_pair.orders)
    assert metric_value(after, "orders_idempotency_conflicts_total") - \
        metric_value(before, "orders_idempotency_conflicts_total") == 1

    # the original is still replayed after the conflict
    again = post(api, body, key)
    assert_status(again, 201)
    assert replayed(again) and again.json() == first.json(), describe(again)


def test_same_body_formatted_differently_is_a_replay(shared_pair, book):
    """Same members, other member order and whitespace: the same request, so a
    replay (a REST client re-serialising its retry must not get a 409)."""
    api = shared_pair.api
    key = new_key()
    first = requests.post(api.url("/v1/orders"), data=f'{{"book_id":{book["id"]},"quantity":4}}',
                          headers={"Content-Type": "application/json", "Idempotency-Key": key}, timeout=scaled(10))
    assert_status(first, 201)
    again = requests.post(api.url("/v1/orders"), data=f'{{ "quantity": 4,\n  "book_id": {book["id"]} }}',
                          headers={"Content-Type": "application/json", "Idempotency-Key": key}, timeout=scaled(10))
    assert_status(again, 201)
    assert replayed(again) and again.json() == first.json(), describe(again)


def test_different_keys_make_different_orders(shared_pair, book):
    api = shared_pair.api
    body = {"book_id": book["id"], "quantity": 1}
    count = api.total_count()
    a = post(api, body, new_key())
    b = post(api, body, new_key())
    assert_status(a, 201)
    assert_status(b, 201)
    assert a.json()["id"] != b.json()["id"]
    assert not replayed(a) and not replayed(b)
    assert api.total_count() == count + 2


@pytest.mark.parametrize("key", [
    "a",
    "k" * 255,
    "".join(chr(c) for c in range(0x21, 0x7F)),
    "550e8400-e29b-41d4-a716-446655440000",
], ids=["1-char", "255-chars", "every-visible-ascii", "uuid"])
def test_valid_key_formats(shared_pair, book, key):
    """(The module's database is new each run, so these fixed keys are unused.)"""
    api = shared_pair.api
    body = {"book_id": book["id"], "quantity": 1}
    first = post(api, body, key)
    assert_status(first, 201)
    again = post(api, body, key)
    assert_status(again, 201)
    assert replayed(again) and again.json()["id"] == first.json()["id"], describe(again)


@pytest.mark.parametrize("key", ["", "x" * 256, "x" * 2000, "has space", "tab\there", "caf\u00e9", "del\x7fchar"],
                         ids=["empty", "256-chars", "2000-chars", "space", "tab", "non-ascii", "del"])
def test_invalid_key_formats_are_400(shared_pair, book, key):
    api = shared_pair.api
    count = api.total_count()
    resp = post(api, {"book_id": book["id"], "quantity": 1}, key)
    assert_error(resp, 400, "VALIDATION_ERROR")
    assert api.total_count() == count


def test_rejected_request_does_not_spend_the_key(shared_pair, book):
    """A request refused by validation created nothing: the key stays free."""
    api = shared_pair.api
    key = new_key()
    assert_error(post(api, {"book_id": book["id"], "quantity": 0}, key), 400, "VALIDATION_ERROR")
    assert_error(post(api, {"book_id": 987654321, "quantity": 1}, key), 404, "NOT_FOUND")
    first = post(api, {"book_id": book["id"], "quantity": 1}, key)
    assert_status(first, 201)
    assert not replayed(first), describe(first)
    again = post(api, {"book_id": book["id"], "quantity": 1}, key)
    assert replayed(again) and again.json()["id"] == first.json()["id"], describe(again)


def concurrent_posts(api, bodies, key):
    barrier = threading.Barrier(len(bodies))

    def one(body):
        barrier.wait(scaled(10))
        return post(api, body, key, timeout=scaled(20))

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def test_concurrent_same_key_same_body_make_one_order(shared_pair, book):
    api = shared_pair.api
    key = new_key()
    count = api.total_count()
    before = scrape(shared_pair.orders)
    resps = concurrent_posts(api, [{"book_id": book["id"], "quantity": 7}] * 20, key)
    for r in resps:
        assert_status(r, 201)
    orders = [r.json() for r in resps]
    assert len({o["id"] for o in orders}) == 1, f"ids: {sorted(o['id'] for o in orders)}"
    assert all(o == orders[0] for o in orders), orders
    originals = [r for r in resps if not replayed(r)]
    assert len(originals) == 1, (f"exactly one response creates the order, the other 19 are replays; "
                                 f"{len(originals)} lack Idempotent-Replayed: true")
    assert api.total_count() == count + 1
    after = scrape(shared_pair.orders)
    assert metric_value(after, "orders_created_total") - metric_value(before, "orders_created_total") == 1


def test_concurrent_same_key_different_bodies(shared_pair, book):
    api = shared_pair.api
    key = new_key()
    count = api.total_count()
    bodies = [{"book_id": book["id"], "quantity": 1 + (i % 2)} for i in range(20)]
    resps = concurrent_posts(api, bodies, key)
    assert api.total_count() == count + 1
    created = [r for r in resps if r.status_code == 201]
    assert created, [describe(r) for r in resps[:3]]
    winner = created[0].json()
    for body, r in zip(bodies, resps):
        if body["quantity"] == winner["quantity"]:
            assert_status(r, 201)
            assert r.json() == winner
        else:
            assert_error(r, 409, "IDEMPOTENCY_CONFLICT")


def test_replay_while_books_is_down(odaemons):
    """Replays need no Books call: they work with Books stopped and the
    circuit open.  A key whose request failed with 503 is not spent."""
    pair = ServicePair(odaemons, orders_env={"BOOKS_TIMEOUT_MS": int(scaled(0.5) * 1000),
                                             "BOOKS_CIRCUIT_FAILURE_THRESHOLD": 2,
                                             "BOOKS_CIRCUIT_COOLDOWN_MS": int(scaled(1) * 1000)})
    api = pair.api
    bk = pair.books_api.create_book(title="Kept", price="6.50")
    key = new_key()
    body = {"book_id": bk["id"], "quantity": 2}
    first = post(api, body, key)
    assert_status(first, 201)

    pair.books.stop()
    before = scrape(pair.orders)
    again = post(api, body, key)
    assert_status(again, 201)
    assert replayed(again) and again.json() == first.json(), describe(again)

    # open the circuit; replays still answer
    retry_key = new_key()
    for _ in range(2):
        assert_error(post(api, body, retry_key), 503, "SERVICE_UNAVAILABLE")
    wait_for(lambda: metric_value(scrape(pair.orders), "books_circuit_state") == 1, scaled(3),
             message="books_circuit_state 1")
    again = post(api, body, key)
    assert_status(again, 201)
    assert replayed(again) and again.json() == first.json(), describe(again)
    after = scrape(pair.orders)
    books_calls = lambda s: sum(v for n, l, v in s if n == "books_requests_total" and l.get("result") != "rejected")
    assert books_calls(after) - books_calls(before) == 2, "only the two 503s may have tried to reach Books"
    assert api.total_count() == 1

    # Books back: the key that only ever got 503 now creates the order
    pair.restart_books()
    deadline = time.monotonic() + scaled(10)
    while True:
        resp = post(api, body, retry_key)
        if resp.status_code == 201:
            break
        assert_error(resp, 503, "SERVICE_UNAVAILABLE")
        assert time.monotonic() < deadline, f"orders did not recover{describe(resp)}\n{pair.orders.log_tail()}"
        time.sleep(0.2)
    assert not replayed(resp), describe(resp)
    assert resp.json()["id"] != first.json()["id"]
    assert api.total_count() == 2


def test_expired_keys_are_purged_and_orders_kept(fresh_pair, pg):
    """A key older than IDEMPOTENCY_KEY_RETENTION_HOURS is forgotten at the
    next purge (the first runs as soon as the schema is ready): its order
    stays, and the key may create a new order. A younger key stays."""
    api = fresh_pair.api
    book = fresh_pair.books_api.create_book(title="Expiring", author="Keys", price="3.00")
    body = {"book_id": book["id"], "quantity": 1}
    old_key, young_key = new_key(), new_key()
    old = post(api, body, old_key)
    young = post(api, body, young_key)
    assert_status(old, 201)
    assert_status(young, 201)
    pg.psql(f"UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
            f"WHERE key = '{old_key}'", db=fresh_pair.orders_db)

    orders = fresh_pair.restart_orders()
    wait_for(lambda: any("purged 1 expired idempotency keys" in r.get("MESSAGE", "")
                         for r in orders.log_records()),
             scaled(10), message="the purge at start")
    kept = pg.psql(f"SELECT idempotency_key IS NULL FROM orders WHERE id = {old.json()['id']}",
                   db=fresh_pair.orders_db).strip()
    assert kept == "t", "the expired key's order must stay, without its key"

    again = post(api, body, old_key)
    assert_status(again, 201)
    assert not replayed(again) and again.json()["id"] != old.json()["id"], describe(again)
    replay = post(api, body, young_key)
    assert_status(replay, 201)
    assert replayed(replay) and replay.json()["id"] == young.json()["id"], describe(replay)
