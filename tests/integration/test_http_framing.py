"""The HTTP edge layer shared by bookstore-books, bookstore-orders and the
worker's metrics port: requests it cannot frame unambiguously, or must not
route, get a "guard rejection" (rawhttp.py): exactly one HTTP/1.1 JSON error
with X-Request-ID and Connection: close, then the connection is closed, and
nothing else in the same bytes is served or stored.  Positive controls
(pipelining, keep-alive, Expect: 100-continue, HTTP/1.0, chunked bodies)
keep working.

Most cases run on Books; a representative subset also on Orders
(/v1/orders) and on the worker's metrics port."""

import json
import uuid

import pytest
import requests

from harness import (DEFAULT_TIMEOUT, DaemonManager, OrdersApi, assert_serving, daemon_wrapper,
                     metric_value, parse_metrics, scaled)
from rawhttp import (RawConnection, assert_guard_rejection, assert_single_response,
                     chunked, exchange, request_bytes, vm_rss_kib)
from redis_server import RedisServer
from worker_harness import start_worker

JSON_CT = ("Content-Type", "application/json")
BAD = "BAD_REQUEST"

# 47 bytes: with the 61-byte smuggled GET after it, 108 bytes in all.
BOOK_47 = b'{"title":"smuggle","author":"a","price":"1.00"}'
assert len(BOOK_47) == 47


def padded_get(path, total):
    """A GET of exactly `total` bytes (padded with an X-Pad header)."""
    bare = request_bytes("GET", path, host="x")
    pad = total - len(bare) - len("X-Pad: \r\n")
    assert pad >= 1, (path, total)
    return request_bytes("GET", path, host="x", headers=[("X-Pad", "p" * pad)])


# --------------------------------------------------------------------------
# targets: Books, Orders, the worker's metrics port


class Target:
    """A daemon under test, with a POST that would store something (or at
    least be answered) and smuggled requests that would be visible if served."""

    def __init__(self, name, daemon, post_path, body, smuggle_get, smuggle_post, count):
        self.name = name
        self.daemon = daemon
        self.port = daemon.port
        self.post_path = post_path
        self.body = body
        self.smuggle_get = smuggle_get
        self.smuggle_post = smuggle_post
        self._count = count

    def count(self):
        """Rows stored (books, orders); None for the worker."""
        return self._count() if self._count else None

    def five_xx(self):
        resp = requests.get(self.daemon.url("/metrics"), timeout=DEFAULT_TIMEOUT)
        assert resp.status_code == 200, resp.text[:300]
        return metric_value(parse_metrics(resp.text), "http_requests_total", status_class="5xx")


class _WorkerService:
    def __init__(self, manager, redis):
        self.manager, self.redis = manager, redis
        self.worker = start_worker(manager, redis)

    def current(self):
        if not self.worker.alive():
            self.worker = start_worker(self.manager, self.redis)
        return self.worker


@pytest.fixture(scope="module")
def worker_service(tmp_path_factory):
    with RedisServer() as redis, DaemonManager(None, tmp_path_factory.mktemp("framing-worker")) as manager:
        yield _WorkerService(manager, redis)


def books_target(daemon):
    api = daemon.api
    return Target(
        "books", daemon, "/v1/books", BOOK_47,
        smuggle_get=padded_get("/v1/books/424242", 61),
        smuggle_post=request_bytes("POST", "/v1/books", [JSON_CT],
                                   b'{"title":"smuggled","author":"s","price":"2.00"}'),
        count=api.total_count)


def orders_target(pair):
    book = pair.books_api.create_book(title="framing", price="3.00")
    body = json.dumps({"book_id": book["id"], "quantity": 1}).encode()
    api = OrdersApi(pair.orders.url())
    return Target(
        "orders", pair.orders, "/v1/orders", body,
        smuggle_get=request_bytes("GET", "/v1/orders/424242", host="x"),
        smuggle_post=request_bytes("POST", "/v1/orders", [JSON_CT], body),
        count=api.total_count)


def worker_target(worker):
    return Target(
        "worker", worker, "/metrics", b'{"x":1}',
        smuggle_get=request_bytes("GET", "/livez", host="x"),
        smuggle_post=request_bytes("POST", "/livez", [JSON_CT], b'{"x":1}'),
        count=None)


@pytest.fixture
def target(request):
    """Indirect: "books", "orders" or "worker".  The daemon must still serve
    after the test."""
    name = request.param
    if name == "books":
        t = books_target(request.getfixturevalue("shared_daemon"))
    elif name == "orders":
        t = orders_target(request.getfixturevalue("shared_pair"))
    else:
        t = worker_target(request.getfixturevalue("worker_service").current())
    yield t
    assert_serving(t.daemon)


@pytest.fixture
def books(shared_daemon):
    t = books_target(shared_daemon)
    yield t
    assert_serving(shared_daemon)


ALL = pytest.mark.parametrize("target", ["books", "orders", "worker"], indirect=True)


def post(target, headers, body, path=None, version="HTTP/1.1", host="127.0.0.1"):
    """A POST head with exactly these headers (plus Host), then body as is."""
    return request_bytes("POST", path or target.post_path, headers, version=version, host=host) + body


def guarded(target, data, status=400, code=BAD, **kw):
    """Send; expect a guard rejection; nothing stored."""
    before = target.count()
    ex = exchange(target.port, data, **kw)
    resp = assert_guard_rejection(ex, status, code)
    assert target.count() == before, f"something was stored{ex.describe()}"
    return resp


# --------------------------------------------------------------------------
# positive controls: these pass today and must keep passing


def test_pipelined_gets_answered_in_order(books):
    api = books.daemon.api
    a = api.create_book(title="pipe-a")
    b = api.create_book(title="pipe-b")
    data = (request_bytes("GET", f"/v1/books/{a['id']}") + request_bytes("GET", f"/v1/books/{b['id']}")
            + request_bytes("GET", "/livez"))
    with RawConnection(books.port) as conn:
        conn.send(data)
        r1, r2, r3 = (conn.read_response() for _ in range(3))
    assert (r1.status, r2.status, r3.status) == (200, 200, 200), (r1, r2, r3)
    assert r1.json()["id"] == a["id"] and r1.json()["title"] == "pipe-a", r1
    assert r2.json()["id"] == b["id"] and r2.json()["title"] == "pipe-b", r2
    assert r3.json() == {"status": "alive"}, r3


def test_content_length_posts_over_keep_alive(books):
    with RawConnection(books.port) as conn:
        ids = []
        for i in range(3):
            body = json.dumps({"title": f"keep-alive {i}", "author": "a", "price": "1.50"}).encode()
            conn.send(request_bytes("POST", "/v1/books", [JSON_CT], body))
            resp = conn.read_response()
            assert resp.status == 201, resp
            assert not resp.has_token("Connection", "close"), resp
            ids.append(resp.json()["id"])
        conn.send(request_bytes("GET", f"/v1/books/{ids[0]}"))
        resp = conn.read_response()
    assert resp.status == 200 and resp.json()["title"] == "keep-alive 0", resp


@pytest.mark.parametrize("path, status", [("/v1/books/1", None), ("/v1/books/999999", 404),
                                          ("/v1/books/abc", 400), ("/livez", 200)])
def test_connection_close_is_answered_with_connection_close(books, path, status):
    """A request that says Connection: close is answered saying so, then the
    connection closes: a client pool that keeps connections unless told
    (urllib3) must not reuse it."""
    book = books.daemon.api.create_book(title="closing")
    path = path.replace("/1", f"/{book['id']}") if status is None else path
    with RawConnection(books.port) as conn:
        conn.send(request_bytes("GET", path, [("Connection", "close")]))
        resp = conn.read_response()
        assert resp.status == (status or 200), resp
        assert resp.has_token("Connection", "close"), resp
        assert conn.wait_closed(scaled(5)), "the connection stayed open after Connection: close"


def test_a_session_sending_connection_close_never_sees_a_reset(books):
    book = books.daemon.api.create_book(title="no reset")
    with requests.Session() as s:
        s.headers["Connection"] = "close"
        for _ in range(200):
            resp = s.get(books.daemon.url(f"/v1/books/{book['id']}"), timeout=DEFAULT_TIMEOUT)
            assert resp.status_code == 200 and resp.headers.get("Connection") == "close", resp


def test_expect_100_continue_post(books):
    body = json.dumps({"title": "expect", "author": "a", "price": "4.00"}).encode()
    with RawConnection(books.port) as conn:
        conn.send(request_bytes("POST", "/v1/books", [JSON_CT, ("Expect", "100-continue"),
                                                     ("Content-Length", str(len(body)))],
                                content_length=False))
        try:  # a 100 Continue is expected, but a client sends the body after a short wait anyway
            interim = conn.read_response(timeout=scaled(1), interim=True)
            assert interim.status == 100, interim
        except TimeoutError:
            pass
        conn.send(body)
        resp = conn.read_response()
    assert resp.status == 201, resp
    assert resp.json()["title"] == "expect", resp


@ALL
def test_http10_without_host(target):
    with RawConnection(target.port) as conn:
        conn.send(b"GET /livez HTTP/1.0\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200, resp
    assert resp.json() == {"status": "alive"}, resp


def test_http10_without_host_books_list(books):
    with RawConnection(books.port) as conn:
        conn.send(b"GET /v1/books HTTP/1.0\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200, resp
    assert isinstance(resp.json(), list), resp


def test_chunked_post_of_50_chunks_then_keep_alive(books):
    body = json.dumps({"title": "fifty chunks", "author": "an author", "price": "7.25",
                       "description": "sent in about fifty pieces"}).encode()
    encoded = chunked(body, n_chunks=50)
    assert encoded.count(b"\r\n") == 2 * 51  # 50 chunks and the last one
    data = request_bytes("POST", "/v1/books", [JSON_CT, ("Transfer-Encoding", "chunked")]) + encoded
    with RawConnection(books.port) as conn:
        conn.send(data)
        resp = conn.read_response()
        assert resp.status == 201, resp
        assert not resp.has_token("Connection", "close"), resp
        book = resp.json()
        assert book["title"] == "fifty chunks", resp
        conn.send(request_bytes("GET", f"/v1/books/{book['id']}"))
        again = conn.read_response()
    assert again.status == 200 and again.json() == book, again


# --------------------------------------------------------------------------
# 1. Content-Length


@ALL
@pytest.mark.parametrize("order", ["long-first", "short-first"])
def test_conflicting_content_lengths(target, order):
    """Two Content-Length values: 400; neither the POST nor the request
    hidden after its body is served."""
    short = len(target.body)
    long = short + len(target.smuggle_get)
    if target.name == "books":
        assert (long, short) == (108, 47)
    values = [long, short] if order == "long-first" else [short, long]
    data = post(target, [JSON_CT] + [("Content-Length", str(v)) for v in values],
                target.body + target.smuggle_get)
    guarded(target, data)


@pytest.mark.parametrize("headers", [
    [("Content-Length", "41"), ("Content-Length", "41")],
    [("Content-Length", "41, 41")],
    [("Content-Length", "+41")],
    [("Content-Length", "4 1")],
    [("Content-Length", "0x10")],
], ids=["two-identical", "list", "plus", "inner-space", "hex"])
def test_invalid_content_length(books, headers):
    body = b'{"title":"c","author":"a","price":"1.00"}'
    assert len(body) == 41
    guarded(books, post(books, [JSON_CT] + headers, body))


# --------------------------------------------------------------------------
# 2. Content-Length with Transfer-Encoding


@pytest.mark.parametrize("target,variant", [
    (t, v) for t in ("books", "orders", "worker") for v in ("cl-first", "te-first")] + [("books", "cl-covers-all")],
    indirect=["target"])
def test_content_length_with_chunked(target, variant):
    body = chunked(target.body, sizes=[10])
    cl = len(body) + (len(target.smuggle_post) if variant == "cl-covers-all" else 0)
    chunked_header = ("Transfer-Encoding", "chunked")
    cl_header = ("Content-Length", str(cl))
    pair = [chunked_header, cl_header] if variant == "te-first" else [cl_header, chunked_header]
    headers = [JSON_CT] + pair
    guarded(target, post(target, headers, body + target.smuggle_post))


# --------------------------------------------------------------------------
# 3. whitespace before the colon, invalid chunks


@ALL
def test_transfer_encoding_space_before_colon(target):
    data = post(target, [JSON_CT, ("Transfer-Encoding ", "chunked")],
                chunked(target.body) + target.smuggle_post)
    guarded(target, data)


@pytest.mark.parametrize("kind", ["content-length", "content-type", "host", "custom-tab", "custom-space"])
def test_header_name_with_whitespace_before_colon(books, kind):
    body = b'{"title":"ws","author":"a","price":"1.00"}'
    if kind == "content-length":
        data = post(books, [JSON_CT, ("Content-Length ", str(len(body)))], body)
    elif kind == "content-type":
        data = post(books, [("Content-Type ", "application/json"), ("Content-Length", str(len(body)))], body)
    elif kind == "host":
        data = request_bytes("GET", "/v1/books", [("Host ", "127.0.0.1")], host=None)
    elif kind == "custom-tab":
        data = request_bytes("GET", "/v1/books", [("X-Trace\t", "1")])
    else:
        data = request_bytes("GET", "/v1/books", [("X-Trace ", "1")])
    guarded(books, data + books.smuggle_get)


BAD_CHUNKS = {
    "zz": lambda body: b"zz\r\n" + body + b"\r\n0\r\n\r\n",
    "minus-one": lambda body: b"-1\r\n" + body + b"\r\n0\r\n\r\n",
    "18-hex-digits": lambda body: b"ffffffffffffffffff\r\n" + body + b"\r\n0\r\n\r\n",
    "no-crlf-after-data": lambda body: b"%x\r\n" % len(body) + body + b"XY0\r\n\r\n",
}


@pytest.mark.parametrize("kind", list(BAD_CHUNKS))
def test_invalid_chunk(books, kind):
    data = post(books, [JSON_CT, ("Transfer-Encoding", "chunked")],
                BAD_CHUNKS[kind](books.body) + books.smuggle_post)
    guarded(books, data)


@pytest.mark.parametrize("target", ["orders", "worker"], indirect=True)
@pytest.mark.parametrize("kind", ["18-hex-digits", "no-crlf-after-data"])
def test_invalid_chunk_other_daemons(target, kind):
    data = post(target, [JSON_CT, ("Transfer-Encoding", "chunked")],
                BAD_CHUNKS[kind](target.body) + target.smuggle_post)
    guarded(target, data)


# --------------------------------------------------------------------------
# 4. Host, Idempotency-Key


@ALL
def test_two_host_headers(target):
    data = request_bytes("GET", "/livez", [("Host", "other.example")]) + target.smuggle_get
    guarded(target, data)


@ALL
def test_http11_without_host(target):
    data = request_bytes("GET", "/livez", host=None) + target.smuggle_get
    guarded(target, data)


def test_two_idempotency_keys(shared_pair):
    t = orders_target(shared_pair)
    keys = [f"framing-{uuid.uuid4()}", f"framing-{uuid.uuid4()}"]
    data = post(t, [JSON_CT, ("Idempotency-Key", keys[0]), ("Idempotency-Key", keys[1]),
                    ("Content-Length", str(len(t.body)))], t.body)
    guarded(t, data)
    # neither key was recorded: each creates its order now
    for key in keys:
        resp = OrdersApi(shared_pair.orders.url()).create_order(json.loads(t.body)["book_id"], 1, key=key,
                                                                status=None)
        assert resp.status_code == 201, (key, resp.status_code, resp.text[:300])


# --------------------------------------------------------------------------
# 5. unsupported transfer codings: 400, never a 5xx


@ALL
@pytest.mark.parametrize("coding", ["foo", "gzip, chunked"])
def test_unsupported_transfer_coding(target, coding):
    before = target.five_xx()
    data = post(target, [JSON_CT, ("Transfer-Encoding", coding)], chunked(target.body) + target.smuggle_post)
    resp = guarded(target, data)
    assert resp.status != 501
    after = target.five_xx()
    assert after == before, f"http_requests_total 5xx went from {before} to {after}"


# --------------------------------------------------------------------------
# 6. undecodable paths, methods


def one_response(port, data):
    """Exactly one response comes back (the connection may stay open)."""
    ex = exchange(port, data, close_within=scaled(0.5))
    assert len(ex.responses) == 1 and not ex.leftover, f"expected exactly one response{ex.describe()}"
    return ex


@ALL
@pytest.mark.parametrize("path", [b"/nope%ff", b"/nope\xff", b"/v1/books/%ff%fe", b"/\xc3\x28"],
                         ids=["pct-ff", "raw-ff", "pct-ff-fe", "raw-invalid-utf8"])
def test_undecodable_path_gets_utf8_json(target, path):
    data = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    ex = one_response(target.port, data)
    assert_single_response(ex, range(400, 500))


@ALL
@pytest.mark.parametrize("method", ["G@T", "GET(", "G\"T", "G,T"])
def test_non_token_method(target, method):
    data = f"{method} /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() + target.smuggle_get
    guarded(target, data)


def test_unknown_token_method_is_405_with_allow(books):
    ex = one_response(books.port, request_bytes("FOO", "/v1/books"))
    resp = assert_single_response(ex, 405, "METHOD_NOT_ALLOWED")
    allow = {m.strip().upper() for m in (resp.header("Allow") or "").split(",") if m.strip()}
    assert {"GET", "POST"} <= allow and "FOO" not in allow, ex.describe()


# --------------------------------------------------------------------------
# 7. percent-encoding, OPTIONS *, Expect, NUL, versions, sizes


@pytest.mark.parametrize("path", ["/v1/books/1%00", "/v1/books/1%zz", "/v1/books/%", "/1%zz", "/%",
                                  "/v1/books/1%0", "/v1/books/%00"])
def test_bad_percent_encoding(books, path):
    guarded(books, request_bytes("GET", path) + books.smuggle_get)


@pytest.mark.parametrize("target", ["orders"], indirect=True)
def test_bad_percent_encoding_orders(target):
    guarded(target, request_bytes("GET", "/v1/orders/1%zz") + target.smuggle_get)


@ALL
def test_options_asterisk(target):
    ex = one_response(target.port, request_bytes("OPTIONS", "*"))
    assert_single_response(ex, range(400, 500))


def test_expect_other_than_continue_is_417(books):
    data = post(books, [JSON_CT, ("Expect", "200-ok"), ("Content-Length", str(len(books.body)))], books.body)
    guarded(books, data + books.smuggle_get, 417, "EXPECTATION_FAILED")


@pytest.mark.parametrize("where", ["custom", "user-agent", "x-request-id"])
def test_nul_in_header_value(books, where):
    name = {"custom": "X-Note", "user-agent": "User-Agent", "x-request-id": "X-Request-ID"}[where]
    data = b"GET /v1/books HTTP/1.1\r\nHost: 127.0.0.1\r\n" + name.encode() + b": a\x00b\r\n\r\n"
    guarded(books, data + books.smuggle_get)


@ALL
def test_http2_request_line_is_505(target):
    data = request_bytes("GET", "/livez", version="HTTP/2.0") + target.smuggle_get
    guarded(target, data, 505, "HTTP_VERSION_NOT_SUPPORTED")


@pytest.mark.parametrize("version", ["HTTP/1.2", "HTTP/x"])
def test_unknown_http_version(books, version):
    data = request_bytes("GET", "/", version=version) + books.smuggle_get
    guarded(books, data, {400, 505}, {400: BAD, 505: "HTTP_VERSION_NOT_SUPPORTED"})


KIB = 1024


@ALL
def test_64k_url_is_414(target):
    prefix = "/livez?q="
    data = request_bytes("GET", prefix + "a" * (64 * KIB - len(prefix)))
    guarded(target, data, 414, "URI_TOO_LONG", response_timeout=scaled(5))


@ALL
def test_64k_header_is_431(target):
    data = request_bytes("GET", "/livez", [("X-Big", "b" * (64 * KIB))])
    guarded(target, data, 431, "HEADERS_TOO_LARGE", response_timeout=scaled(5))


def test_ten_thousand_headers_is_431(books):
    data = request_bytes("GET", "/livez", [(f"X-H{i}", "v") for i in range(10000)])
    guarded(books, data, 431, "HEADERS_TOO_LARGE", response_timeout=scaled(5))


# --------------------------------------------------------------------------
# 8. paths that are not canonical are never routed


@pytest.mark.parametrize("template", ["/v1/books%2F{id}", "/v1/books/%2f{id}", "/v1/books/../books/{id}",
                                      "/v1/books/./{id}", "/v1/books/%2e%2e/books/{id}"])
def test_non_canonical_path_is_400(books, template):
    book = books.daemon.api.create_book(title="canonical")
    guarded(books, request_bytes("GET", template.format(id=book["id"])) + books.smuggle_get)


@pytest.mark.parametrize("target", ["orders", "worker"], indirect=True)
def test_non_canonical_path_is_400_other_daemons(target):
    guarded(target, request_bytes("GET", "/v1/../livez") + target.smuggle_get)


# --------------------------------------------------------------------------
# 9. bare LF, obs-fold


@ALL
def test_bare_lf_line_endings(target):
    guarded(target, b"GET / HTTP/1.1\nHost: x\n\n" + target.smuggle_get)


def test_bare_lf_in_one_header_line(books):
    guarded(books, b"GET /livez HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n" + books.smuggle_get)


@pytest.mark.parametrize("fold", [b" ", b"\t"], ids=["space", "tab"])
def test_obs_fold(books, fold):
    data = b"GET /v1/books HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Folded: a\r\n" + fold + b"b\r\n\r\n"
    guarded(books, data + books.smuggle_get)


# --------------------------------------------------------------------------
# 10. memory per request


def test_hundred_thousand_one_byte_chunks_is_413(fresh_daemon):
    d = fresh_daemon
    t = books_target(d)
    head = b'{"title":"chunks","author":"a","price":"1.00","description":"'
    body = head + b"d" * (100000 - len(head) - 2) + b'"}'
    assert len(body) == 100000
    encoded = b"".join(b"1\r\n%c\r\n" % c for c in body) + b"0\r\n\r\n"
    data = request_bytes("POST", "/v1/books", [JSON_CT, ("Transfer-Encoding", "chunked")]) + encoded
    rss_before = vm_rss_kib(d.pid)
    guarded(t, data, 413, "PAYLOAD_TOO_LARGE", response_timeout=scaled(10))
    grown_mb = (vm_rss_kib(d.pid) - rss_before) / 1024
    if not daemon_wrapper():  # under valgrind the process's RSS is valgrind's
        assert grown_mb < 20, f"VmRSS grew by {grown_mb:.1f} MB for one request of 100,000 chunks"
