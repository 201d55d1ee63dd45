"""bookstore-orders against the real bookstore-books: the seed's end-to-end
workflow and "Common API Errors", request validation, the snapshot pattern,
exact money, concurrent creation, request ids across both services, listing
and pagination, routing."""

import concurrent.futures
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from harness import (REPO_ROOT, UUID_RE, assert_error, assert_json_content_type, assert_order_shape,
                     assert_status, describe, parse_link_header, parse_ts, raw_exchange, raw_members,
                     raw_money, scaled)

JSON_CT = {"Content-Type": "application/json"}
HEALTHY = {"status": "healthy", "services": {"database": "healthy", "books": "healthy"}}


def without_redis(body):
    """A /health body without services.redis: reported, but it never makes
    Orders unhealthy (test_orders_events.py covers it)."""
    body.get("services", {}).pop("redis", None)
    return body
MIB = 1024 * 1024


def post_order(api, body, content_type="application/json", headers=None):
    """POST /v1/orders with a raw body (bytes, or str, or an object to dump)."""
    hdrs = dict(headers or {})
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    return api.post("/v1/orders", data=data, headers=hdrs)


@pytest.fixture(scope="module")
def book(shared_pair_service):
    """One book in the module's Books (title, author, price 12.99)."""
    return shared_pair_service.current().books_api.create_book(
        title="The Great Gatsby", author="F. Scott Fitzgerald", price="12.99")


# --------------------------------------------------------------------------
# the seed README


def test_seed_end_to_end_workflow(fresh_pair):
    """ "1. End-to-End Workflow with cURL", step by step, on brand-new databases
    (the seed's URLs assume the first book and the first order are id 1)."""
    books, api = fresh_pair.books_api, fresh_pair.api

    # Step 1: Create a book first (the seed sends the price as a JSON number)
    resp = books.post("/v1/books", headers=JSON_CT,
                      data=b'{\n    "title": "The Catcher in the Rye", \n    "author": "J.D. Salinger", \n'
                           b'    "price": 18.99\n  }')
    assert_status(resp, 201)
    book = resp.json()
    assert book["id"] == 1, describe(resp)
    assert book["title"] == "The Catcher in the Rye"

    # Step 2: Create an order for the book
    resp = api.post("/v1/orders", headers=JSON_CT, data=b'{\n    "book_id": 1, \n    "quantity": 3\n  }')
    assert_status(resp, 201)
    assert_json_content_type(resp)
    order = resp.json()
    assert_order_shape(order)
    assert order["id"] == 1, describe(resp)
    assert order["book_id"] == 1
    assert order["book_title"] == "The Catcher in the Rye"
    assert order["book_author"] == "J.D. Salinger"
    assert order["quantity"] == 3
    assert order["status"] == "pending", describe(resp)
    assert raw_money(resp, "unit_price") == "18.99", describe(resp)
    assert raw_money(resp, "total_price") == "56.97", describe(resp)
    assert resp.headers.get("Location") == "/v1/orders/1", describe(resp)
    created = parse_ts(order["created_at"])
    now = datetime.now(timezone.utc)
    assert now - timedelta(minutes=5) < created < now + timedelta(minutes=5), order
    assert created >= parse_ts(book["created_at"]), (book, order)

    # Step 3: Verify the order
    resp = api.get("/v1/orders/1")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert resp.json() == order, describe(resp)
    assert raw_money(resp, "unit_price") == "18.99" and raw_money(resp, "total_price") == "56.97", describe(resp)

    # Step 4: List all orders
    resp = api.get("/v1/orders")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert resp.json() == [order], describe(resp)
    assert resp.headers.get("X-Total-Count") == "1", describe(resp)
    assert raw_members(resp.text, "total_price") == ["56.97"], describe(resp)

    # Step 5: Check health status
    resp = api.get("/health")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert without_redis(resp.json()) == HEALTHY, describe(resp)


def test_seed_load_testing_example(fresh_pair):
    """ "Load Testing with Multiple Orders": ten concurrent orders, quantity 1..10."""
    book = fresh_pair.books_api.create_book(title="Loaded", price="2.00")
    api = fresh_pair.api
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        resps = list(pool.map(lambda q: requests.post(api.url("/v1/orders"), timeout=scaled(15),
                                                      json={"book_id": book["id"], "quantity": q}),
                              range(1, 11)))
    for r in resps:
        assert_status(r, 201)
    listing = api.get("/v1/orders")
    assert_status(listing, 200)
    assert sorted(o["quantity"] for o in listing.json()) == list(range(1, 11)), describe(listing)
    assert listing.headers.get("X-Total-Count") == "10"


@pytest.mark.parametrize("body", [
    '{"book_id": -1, "quantity": 2}',
    '{"book_id": 1, "quantity": 0}',
    '{"book_id": 1, "quantity": -2}',
    '{"book_id": 1}',
], ids=["negative-book-id", "zero-quantity", "negative-quantity", "missing-quantity"])
def test_seed_common_errors_validation(shared_pair, book, body):
    """ "1. Validation Errors (400 Bad Request)" """
    api = shared_pair.api
    before = api.total_count()
    assert_error(post_order(api, body.replace('"book_id": 1', f'"book_id": {book["id"]}')), 400,
                 "VALIDATION_ERROR")
    assert api.total_count() == before


def test_seed_common_errors_not_found(shared_pair):
    """ "2. Resource Not Found (404)": a book that does not exist, an order that does not."""
    api = shared_pair.api
    assert_status(shared_pair.books_api.get("/v1/books/999"), 404)
    before = api.total_count()
    assert_error(post_order(api, '{"book_id": 999, "quantity": 2}'), 404, "NOT_FOUND")
    assert api.total_count() == before
    assert_error(api.get("/v1/orders/999"), 404, "NOT_FOUND")


def test_seed_common_errors_books_down(fresh_pair):
    """ "3. Service Unavailable (503)": when the books service is down."""
    book = fresh_pair.books_api.create_book(title="Down", price="1.00")
    api = fresh_pair.api
    fresh_pair.api.order(book["id"], 1)
    fresh_pair.books.stop()
    resp = post_order(api, {"book_id": book["id"], "quantity": 2})
    assert_error(resp, 503, "SERVICE_UNAVAILABLE")
    assert resp.headers.get("Retry-After", "").isdigit(), f"503 without Retry-After{describe(resp)}"
    assert api.total_count() == 1


def test_deleted_book_is_409_book_not_orderable(shared_pair):
    books, api = shared_pair.books_api, shared_pair.api
    gone = books.create_book(title="Withdrawn", price="5.00")
    assert_status(books.delete(f"/v1/books/{gone['id']}"), 204)
    assert_status(books.get(f"/v1/books/{gone['id']}"), 410)
    before = api.total_count()
    assert_error(post_order(api, {"book_id": gone["id"], "quantity": 1}), 409, "BOOK_NOT_ORDERABLE")
    assert api.total_count() == before


# --------------------------------------------------------------------------
# validation: every case must be a 400 VALIDATION_ERROR and create nothing

# BID is replaced by the id of an existing book, so only the rule under test fails
INVALID = {
    "book_id string": '{"book_id": "BID", "quantity": 1}',
    "book_id float": '{"book_id": BID.5, "quantity": 1}',
    "book_id float .0": '{"book_id": BID.0, "quantity": 1}',
    "book_id exponent": '{"book_id": 1e0, "quantity": 1}',
    "book_id true": '{"book_id": true, "quantity": 1}',
    "book_id false": '{"book_id": false, "quantity": 1}',
    "book_id null": '{"book_id": null, "quantity": 1}',
    "book_id array": '{"book_id": [BID], "quantity": 1}',
    "book_id object": '{"book_id": {"id": BID}, "quantity": 1}',
    "book_id empty string": '{"book_id": "", "quantity": 1}',
    "book_id 0": '{"book_id": 0, "quantity": 1}',
    "book_id -1": '{"book_id": -1, "quantity": 1}',
    "book_id -BID": '{"book_id": -BID, "quantity": 1}',
    "book_id 2^63": '{"book_id": 9223372036854775808, "quantity": 1}',
    "book_id -2^63": '{"book_id": -9223372036854775808, "quantity": 1}',
    "book_id 2^64": '{"book_id": 18446744073709551616, "quantity": 1}',
    "book_id huge": '{"book_id": 99999999999999999999999999, "quantity": 1}',
    "book_id 1e400": '{"book_id": 1e400, "quantity": 1}',
    "quantity string": '{"book_id": BID, "quantity": "2"}',
    "quantity float": '{"book_id": BID, "quantity": 1.5}',
    "quantity float .0": '{"book_id": BID, "quantity": 2.0}',
    "quantity true": '{"book_id": BID, "quantity": true}',
    "quantity null": '{"book_id": BID, "quantity": null}',
    "quantity array": '{"book_id": BID, "quantity": [1]}',
    "quantity object": '{"book_id": BID, "quantity": {}}',
    "quantity 0": '{"book_id": BID, "quantity": 0}',
    "quantity -1": '{"book_id": BID, "quantity": -1}',
    "quantity 10001": '{"book_id": BID, "quantity": 10001}',
    "quantity 2^63": '{"book_id": BID, "quantity": 9223372036854775808}',
    "quantity 2^32+1": '{"book_id": BID, "quantity": 4294967297}',
    "quantity huge": '{"book_id": BID, "quantity": 99999999999999999999999999}',
    "missing book_id": '{"quantity": 1}',
    "missing quantity": '{"book_id": BID}',
    "empty object": '{}',
    "unknown member": '{"book_id": BID, "quantity": 1, "note": "gift wrap"}',
    "unknown member null": '{"book_id": BID, "quantity": 1, "coupon": null}',
    "client sets unit_price": '{"book_id": BID, "quantity": 1, "unit_price": 0.01}',
    "client sets total_price": '{"book_id": BID, "quantity": 1, "total_price": 0.01}',
    "client sets id": '{"book_id": BID, "quantity": 1, "id": 1}',
    "client sets status": '{"book_id": BID, "quantity": 1, "status": "paid"}',
    "member name case": '{"Book_Id": BID, "quantity": 1}',
    "top-level array": '[{"book_id": BID, "quantity": 1}]',
    "top-level empty array": '[]',
    "top-level string": '"book_id"',
    "top-level number": '42',
    "top-level null": 'null',
    "top-level true": 'true',
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_bodies_are_400_validation_error(shared_pair, book, name):
    api = shared_pair.api
    body = INVALID[name].replace("BID", str(book["id"]))
    before = api.total_count()
    assert_error(post_order(api, body), 400, "VALIDATION_ERROR")
    assert api.total_count() == before


MALFORMED = [
    '{"book_id":',
    'not json at all',
    '{"book_id": 1, "quantity": 1,}',
    "{'book_id': 1, 'quantity': 1}",
    '{book_id: 1, quantity: 1}',
    '{"book_id": 1, "quantity": 1} trailing garbage',
    '{"book_id": 1, "quantity": 1}{"book_id": 1, "quantity": 1}',
    '{"book_id": 1 "quantity": 1}',
    '{"book_id": 01, "quantity": 1}',
    '{"book_id": NaN, "quantity": 1}',
    '{"book_id": 1, "quantity": Infinity}',
    '{"book_id": 1, "quantity": +1}',
    '{"book_id": 0x1, "quantity": 1}',
    '{"book_id": 1, "quantity": 1',
    b'\xff\xfe{"book_id": 1, "quantity": 1}',
    b'{"book_id": 1, "quantity": 1, "\xff": 1}',
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_json_is_400(shared_pair, body):
    api = shared_pair.api
    before = api.total_count()
    assert_error(post_order(api, body), 400, "MALFORMED_JSON")
    assert api.total_count() == before


def test_empty_body_is_400(shared_pair):
    resp = post_order(shared_pair.api, b"")
    assert resp.status_code == 400, describe(resp)
    assert_json_content_type(resp)
    assert resp.json().get("error") in ("MALFORMED_JSON", "VALIDATION_ERROR"), describe(resp)


@pytest.mark.parametrize("ctype", ["text/plain", None, "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/xml", "json",
                                   "application/jsonx"])
def test_wrong_content_type_is_415(shared_pair, book, ctype):
    api = shared_pair.api
    before = api.total_count()
    resp = post_order(api, {"book_id": book["id"], "quantity": 1}, content_type=ctype)
    assert_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert api.total_count() == before


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON",
                                   "application/json;charset=UTF-8"])
def test_json_content_type_variants_accepted(shared_pair, book, ctype):
    resp = post_order(shared_pair.api, {"book_id": book["id"], "quantity": 1}, content_type=ctype)
    assert_status(resp, 201)
    assert_order_shape(resp.json())


@pytest.mark.parametrize("quantity", [1, 10000])
def test_quantity_bounds_are_inclusive(shared_pair, book, quantity):
    order = shared_pair.api.order(book["id"], quantity)
    assert order["quantity"] == quantity


def test_whitespace_and_member_order_do_not_matter(shared_pair, book):
    body = f'\n\t {{ "quantity" :\t4 ,\r\n "book_id":{book["id"]} }}  \n'
    resp = post_order(shared_pair.api, body)
    assert_status(resp, 201)
    assert resp.json()["quantity"] == 4 and resp.json()["book_id"] == book["id"]


def test_largest_book_id_passes_validation(shared_pair):
    """2^63-1 is a valid id: Books is asked and says 404."""
    assert_error(post_order(shared_pair.api, '{"book_id": 9223372036854775807, "quantity": 1}'), 404,
                 "NOT_FOUND")


def test_body_over_1mib_is_413(shared_pair, book):
    port = shared_pair.orders.port
    head_json = f'{{"book_id":{book["id"]},"quantity":1,"pad":"'.encode()
    body = head_json + b"d" * (MIB + 1 - len(head_json) - 2) + b'"}'
    head = (f"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    before = shared_pair.api.total_count()
    status, headers, rbody = raw_exchange(port, head, [body[i:i + 65536] for i in range(0, len(body), 65536)],
                                          timeout=scaled(10))
    assert status == 413, (status, headers, rbody[:300])
    assert headers.get("content-type", "").split(";")[0].strip() == "application/json", headers
    assert isinstance(json.loads(rbody).get("error"), str), rbody[:300]
    assert shared_pair.api.total_count() == before


# --------------------------------------------------------------------------
# snapshot


def test_snapshot_survives_book_update_and_delete(shared_pair):
    books, api = shared_pair.books_api, shared_pair.api
    book = books.create_book(title="Original Title", author="Original Author", price="12.99")
    resp = api.create_order(book["id"], 2)
    order = resp.json()
    assert (order["book_title"], order["book_author"], order["quantity"]) == \
        ("Original Title", "Original Author", 2), order
    assert raw_money(resp, "unit_price") == "12.99" and raw_money(resp, "total_price") == "25.98", describe(resp)

    # the book changes: price, title, author
    resp = books.put(f"/v1/books/{book['id']}", json={"title": "New Title", "author": "New Author",
                                                      "price": "20.00"})
    assert_status(resp, 200)
    got = api.get(f"/v1/orders/{order['id']}")
    assert_status(got, 200)
    assert got.json() == order, "the order must keep the book as it was when ordered"
    assert raw_money(got, "unit_price") == "12.99" and raw_money(got, "total_price") == "25.98", describe(got)
    listed = [o for o in api.get("/v1/orders", params={"limit": 100}).json() if o["id"] == order["id"]]
    assert listed == [order]

    # a new order takes the new values
    resp = api.create_order(book["id"], 2)
    second = resp.json()
    assert (second["book_title"], second["book_author"]) == ("New Title", "New Author"), second
    assert raw_money(resp, "unit_price") == "20.00" and raw_money(resp, "total_price") == "40.00", describe(resp)

    # the book is deleted: both orders stay as they were, new orders are refused
    assert_status(books.delete(f"/v1/books/{book['id']}"), 204)
    assert api.get(f"/v1/orders/{order['id']}").json() == order
    assert api.get(f"/v1/orders/{second['id']}").json() == second
    assert_error(post_order(api, {"book_id": book["id"], "quantity": 1}), 409, "BOOK_NOT_ORDERABLE")


# --------------------------------------------------------------------------
# exact money: check the digits the server wrote, never a float


@pytest.mark.parametrize("price,quantity,unit,total", [
    ("12.99", 2, "12.99", "25.98"),
    ("0.10", 3, "0.10", "0.30"),
    ("1999.00", 100, "1999.00", "199900.00"),
    ("99999999.99", 10000, "99999999.99", "999999999900.00"),
    ("0.00", 7, "0.00", "0.00"),
    ("0.01", 10000, "0.01", "100.00"),
    ("0.07", 3, "0.07", "0.21"),
    ("1.10", 3, "1.10", "3.30"),
    ("19.99", 7, "19.99", "139.93"),
    ("4.35", 100, "4.35", "435.00"),
    ("1.15", 1, "1.15", "1.15"),
    ("7", 1, "7.00", "7.00"),
    ("0.5", 9999, "0.50", "4999.50"),
])
def test_exact_money(shared_pair, price, quantity, unit, total):
    books, api = shared_pair.books_api, shared_pair.api
    book = books.create_book(title=f"money {price}", price=price)
    resp = api.create_order(book["id"], quantity)
    assert raw_money(resp, "unit_price") == unit, describe(resp)
    assert raw_money(resp, "total_price") == total, describe(resp)
    order = resp.json()
    assert isinstance(order["unit_price"], (int, float)) and isinstance(order["total_price"], (int, float))

    got = api.get(f"/v1/orders/{order['id']}")
    assert_status(got, 200)
    assert raw_money(got, "unit_price") == unit, describe(got)
    assert raw_money(got, "total_price") == total, describe(got)

    newest = api.get("/v1/orders", params={"limit": 1})
    assert_status(newest, 200)
    assert newest.json()[0]["id"] == order["id"], describe(newest)
    assert raw_members(newest.text, "unit_price") == [unit], describe(newest)
    assert raw_members(newest.text, "total_price") == [total], describe(newest)


# --------------------------------------------------------------------------
# concurrency


def test_40_concurrent_orders(fresh_pair):
    book = fresh_pair.books_api.create_book(title="Concurrent", price="3.35")
    api = fresh_pair.api
    n = 40
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait(scaled(10))
        return requests.post(api.url("/v1/orders"), json={"book_id": book["id"], "quantity": i + 1},
                             timeout=scaled(20))

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        resps = list(pool.map(one, range(n)))
    by_quantity = {}
    for r in resps:
        assert_status(r, 201)
        order = r.json()
        assert_order_shape(order)
        q = order["quantity"]
        assert raw_money(r, "total_price") == f"{335 * q // 100}.{335 * q % 100:02d}", describe(r)
        by_quantity[q] = order
    assert sorted(by_quantity) == list(range(1, n + 1))
    ids = [o["id"] for o in by_quantity.values()]
    assert len(set(ids)) == n, f"duplicate ids: {sorted(ids)}"
    resp = api.get("/v1/orders", params={"limit": 100})
    assert_status(resp, 200)
    assert resp.headers.get("X-Total-Count") == str(n), describe(resp)
    assert sorted(o["id"] for o in resp.json()) == sorted(ids)
    for o in by_quantity.values():
        got = api.get(f"/v1/orders/{o['id']}")
        assert_status(got, 200)
        assert got.json() == o


# --------------------------------------------------------------------------
# X-Request-ID across both services


def test_request_id_is_forwarded_to_books(shared_pair, book):
    rid = f"trace-{uuid.uuid4()}"
    resp = shared_pair.api.create_order(book["id"], 1, headers={"X-Request-ID": rid})
    assert resp.headers.get("X-Request-ID") == rid, describe(resp)
    recs = shared_pair.books.wait_for_log(
        lambda r: r.get("REQUEST_ID") == rid and "HTTP_STATUS" in r, timeout=scaled(5),
        message=f"a Books access record with REQUEST_ID={rid}")
    assert len(recs) == 1, recs
    assert recs[0].get("HTTP_METHOD") == "GET" and recs[0].get("HTTP_PATH") == f"/v1/books/{book['id']}", recs
    assert str(recs[0].get("HTTP_STATUS")) == "200", recs
    orec = shared_pair.orders.wait_for_log(
        lambda r: r.get("REQUEST_ID") == rid and "HTTP_STATUS" in r, timeout=scaled(5),
        message=f"an Orders access record with REQUEST_ID={rid}")
    assert orec[0].get("HTTP_PATH") == "/v1/orders" and str(orec[0].get("HTTP_STATUS")) == "201", orec


def test_generated_request_id_is_forwarded_to_books(shared_pair, book):
    resp = shared_pair.api.create_order(book["id"], 1)
    rid = resp.headers.get("X-Request-ID")
    assert rid and UUID_RE.match(rid), f"expected a generated UUID{describe(resp)}"
    recs = shared_pair.books.wait_for_log(
        lambda r: r.get("REQUEST_ID") == rid and "HTTP_STATUS" in r, timeout=scaled(5),
        message=f"a Books access record with the generated REQUEST_ID={rid}")
    assert recs[0].get("HTTP_PATH") == f"/v1/books/{book['id']}", recs


def test_request_id_is_forwarded_on_404(shared_pair):
    rid = f"missing-{uuid.uuid4()}"
    resp = post_order(shared_pair.api, {"book_id": 987654321, "quantity": 1}, headers={"X-Request-ID": rid})
    assert_error(resp, 404, "NOT_FOUND")
    assert resp.headers.get("X-Request-ID") == rid, describe(resp)
    recs = shared_pair.books.wait_for_log(
        lambda r: r.get("REQUEST_ID") == rid and "HTTP_STATUS" in r, timeout=scaled(5),
        message=f"a Books access record with REQUEST_ID={rid}")
    assert str(recs[0].get("HTTP_STATUS")) == "404", recs


# --------------------------------------------------------------------------
# GET /v1/orders/{id}


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", "99999999999999999999",
                                    "9223372036854775808", "1a", "1e3"])
def test_malformed_order_id_is_400(shared_pair, bad_id):
    assert_error(shared_pair.api.get(f"/v1/orders/{bad_id}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("missing", ["987654321", "9223372036854775807"])
def test_missing_order_is_404(shared_pair, missing):
    assert_error(shared_pair.api.get(f"/v1/orders/{missing}"), 404, "NOT_FOUND")


def test_get_order_by_id(shared_pair, book):
    resp = shared_pair.api.create_order(book["id"], 5)
    order = resp.json()
    assert resp.headers.get("Location") == f"/v1/orders/{order['id']}", describe(resp)
    got = shared_pair.api.get(resp.headers["Location"])
    assert_status(got, 200)
    assert_json_content_type(got)
    assert got.json() == order


# --------------------------------------------------------------------------
# GET /v1/orders: newest first, pagination


def links_of(resp):
    out = {}
    for rel, url in parse_link_header(resp.headers.get("Link")).items():
        parsed = urlparse(url)
        assert parsed.path == "/v1/orders", f"Link target {url!r}{describe(resp)}"
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        out[rel] = (int(q["limit"]), int(q["offset"]))
    return out


def test_pagination(fresh_pair):
    books, api = fresh_pair.books_api, fresh_pair.api
    resp = api.get("/v1/orders")
    assert_status(resp, 200)
    assert resp.json() == []
    assert resp.headers.get("X-Total-Count") == "0"
    assert links_of(resp) == {}, describe(resp)

    book = books.create_book(title="Paged", price="1.00")
    ids = [api.order(book["id"], i + 1)["id"] for i in range(25)]
    newest_first = list(reversed(ids))

    resp = api.get("/v1/orders")  # default limit 20
    assert_status(resp, 200)
    page = resp.json()
    assert [o["id"] for o in page] == newest_first[:20], describe(resp)
    for o in page:
        assert_order_shape(o)
    stamps = [parse_ts(o["created_at"]) for o in page]
    assert stamps == sorted(stamps, reverse=True)
    assert resp.headers.get("X-Total-Count") == "25", describe(resp)
    assert links_of(resp) == {"next": (20, 20)}, describe(resp)

    resp = api.get("/v1/orders", params={"limit": 2})
    assert [o["id"] for o in resp.json()] == newest_first[:2]
    assert resp.headers.get("X-Total-Count") == "25"
    assert links_of(resp) == {"next": (2, 2)}, describe(resp)

    resp = api.get("/v1/orders", params={"limit": 2, "offset": 2})
    assert [o["id"] for o in resp.json()] == newest_first[2:4]
    assert links_of(resp) == {"next": (2, 4), "prev": (2, 0)}, describe(resp)

    resp = api.get("/v1/orders", params={"limit": 10, "offset": 20})
    assert [o["id"] for o in resp.json()] == newest_first[20:]
    assert links_of(resp) == {"prev": (10, 10)}, describe(resp)

    resp = api.get("/v1/orders", params={"limit": 5, "offset": 1000})
    assert_status(resp, 200)
    assert resp.json() == []
    assert resp.headers.get("X-Total-Count") == "25"
    assert "next" not in links_of(resp), describe(resp)

    resp = api.get("/v1/orders", params={"limit": 1})
    assert [o["id"] for o in resp.json()] == newest_first[:1]
    resp = api.get("/v1/orders", params={"limit": 100})
    assert [o["id"] for o in resp.json()] == newest_first
    assert "next" not in links_of(resp)

    # walking the next links visits every order exactly once
    seen, path, hops = [], "/v1/orders?limit=7", 0
    while path and hops < 10:
        resp = api.get(path)
        assert_status(resp, 200)
        seen += [o["id"] for o in resp.json()]
        nxt = parse_link_header(resp.headers.get("Link")).get("next")
        path = (urlparse(nxt).path + "?" + urlparse(nxt).query) if nxt else None
        hops += 1
    assert seen == newest_first


@pytest.mark.parametrize("query", [
    "limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "limit=1e1", "limit=10abc",
    "limit=99999999999999999999", "offset=-1", "offset=abc", "offset=1.5",
    "offset=99999999999999999999999", "limit=", "offset=",
])
def test_bad_pagination_params_are_400(shared_pair, query):
    assert_error(shared_pair.api.get(f"/v1/orders?{query}"), 400, "VALIDATION_ERROR")


# --------------------------------------------------------------------------
# routing, health, openapi


def allow_set(resp):
    allow = resp.headers.get("Allow")
    assert allow, f"405 without an Allow header{describe(resp)}"
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


@pytest.mark.parametrize("method,path,expected", [
    ("PUT", "/v1/orders", {"GET", "POST"}),
    ("DELETE", "/v1/orders", {"GET", "POST"}),
    ("PATCH", "/v1/orders", {"GET", "POST"}),
    ("POST", "/v1/orders/1", {"GET"}),
    ("PUT", "/v1/orders/1", {"GET"}),
    ("DELETE", "/v1/orders/1", {"GET"}),
    ("POST", "/health", {"GET"}),
    ("POST", "/metrics", {"GET"}),
    ("DELETE", "/livez", {"GET"}),
])
def test_wrong_method_is_405_with_allow(shared_pair, method, path, expected):
    api = shared_pair.api
    before = api.total_count()
    resp = api.request(method, path, json={"book_id": 1, "quantity": 1})
    assert_error(resp, 405, "METHOD_NOT_ALLOWED")
    allowed = allow_set(resp)
    assert expected <= allowed, f"Allow {allowed} lacks {expected - allowed}{describe(resp)}"
    assert method not in allowed, describe(resp)
    assert api.total_count() == before


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/order", "/v1/orders/1/items", "/v2/orders",
                                  "/v1/books", "/V1/ORDERS", "/v1/orders/1/"])
def test_unknown_route_is_404(shared_pair, path):
    assert_error(shared_pair.api.get(path), 404, "NOT_FOUND")


def test_health(shared_pair):
    resp = shared_pair.api.get("/health")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert without_redis(resp.json()) == HEALTHY


def test_livez(shared_pair):
    resp = shared_pair.api.get("/livez")
    assert_status(resp, 200)
    assert resp.json() == {"status": "alive"}


def test_openapi_document(shared_pair):
    resp = shared_pair.api.get("/openapi.json")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    doc = resp.json()
    assert isinstance(doc.get("openapi"), str) and doc["openapi"].startswith("3."), doc.get("openapi")
    paths = doc.get("paths", {})
    expected = {"/v1/orders": {"get", "post"}, "/v1/orders/{id}": {"get"}, "/health": {"get"}}
    for path, methods in expected.items():
        assert path in paths, f"{path} missing from paths {sorted(paths)}"
        assert methods <= set(paths[path]), (path, sorted(paths[path]))
    installed = REPO_ROOT / "orders" / "openapi.json"
    if installed.exists():
        assert doc == json.loads(installed.read_text()), "served document differs from orders/openapi.json"


def test_openapi_served_document_lints(shared_pair, tmp_path):
    import subprocess

    lint = REPO_ROOT / "tests" / "openapi" / "lint.sh"
    if not lint.exists() or not (lint.parent / "node_modules").is_dir():
        pytest.skip("Redocly CLI not installed (run npm ci in tests/openapi)")
    served = tmp_path / "served-orders-openapi.json"
    served.write_bytes(shared_pair.api.get("/openapi.json").content)
    proc = subprocess.run([str(lint), str(served)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"lint failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_logs_are_json_lines(shared_pair):
    shared_pair.api.get("/livez")
    bad = shared_pair.orders.non_json_lines()
    assert bad == [], f"Orders stderr lines that are not JSON objects: {bad[:10]}"
