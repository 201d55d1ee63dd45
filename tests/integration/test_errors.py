"""Errors at the HTTP level: malformed JSON, media types, body size limits,
unknown routes, wrong methods, hostile input.  After every test the daemon
must still be alive and serving, and no bad input may produce a 5xx."""

import json
import socket

import pytest

from harness import (DEFAULT_TIMEOUT, assert_error, assert_serving, assert_status, describe, raw_exchange,
                     read_http_response)

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def daemon_still_serving(shared_daemon):
    """After every test here the daemon must still be alive and serving."""
    yield
    if not getattr(shared_daemon, "crash_reported", False):  # else the test itself said so
        assert_serving(shared_daemon)


@pytest.fixture
def port(shared_daemon):
    return shared_daemon.port


def post_raw(api, body, content_type="application/json", path="/v1/books", method="POST"):
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.request(method, path, data=body, headers=headers)


def json_error(status, headers, body):
    assert headers.get("content-type", "").split(";")[0].strip() == "application/json", (status, headers, body[:300])
    doc = json.loads(body)
    assert isinstance(doc, dict) and isinstance(doc.get("message"), str), doc
    return doc


# --------------------------------------------------------------------------
# malformed JSON


MALFORMED = [
    b'{"title":',
    b"{title: \"x\"}",
    b'{"title": "a", "author": "b", "price": "1.00",}',
    b"not json at all",
    b"{'title': 'single quotes'}",
    b'{"title": "a", "author": "b", "price": "1.00"} trailing garbage',
    b'{"title": "a", "author": "b", "price": "1.00"}{"x": 1}',
    b'{"title": "unterminated}',
    b'{"title": "a" "author": "b"}',
    b"\xff\xfe\x00{",
    b'{"title": "\xff\xfe invalid utf-8", "author": "b", "price": "1.00"}',
    b'{"title": NaN}',
    b'{"price": 01.5}',
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_json_is_400(api, body):
    before = api.total_count()
    assert_error(post_raw(api, body), 400, "MALFORMED_JSON")
    assert api.total_count() == before


def test_malformed_json_on_put(api):
    book = api.create_book()
    assert_error(post_raw(api, b'{"title": ', method="PUT", path=f"/v1/books/{book['id']}"), 400,
                 "MALFORMED_JSON")
    assert api.get(f"/v1/books/{book['id']}").json() == book


def test_empty_body_with_json_content_type(api):
    resp = post_raw(api, b"")
    assert resp.status_code == 400, describe(resp)
    assert resp.json().get("error") in ("MALFORMED_JSON", "VALIDATION_ERROR"), describe(resp)


@pytest.mark.parametrize("body", [
    b'{"title": "nul\\u0000byte", "author": "a", "price": "1.00"}',
    b'{"title": "lone \\ud800 surrogate", "author": "a", "price": "1.00"}',
    b'{"title": "lone \\udc00 low surrogate", "author": "a", "price": "1.00"}',
    b'{"title": "raw \x00 nul", "author": "a", "price": "1.00"}',
], ids=["escaped-nul", "lone-high-surrogate", "lone-low-surrogate", "raw-nul"])
def test_strings_postgres_cannot_store_are_400(api, body):
    """PostgreSQL text cannot hold NUL or invalid UTF-8: a 400, never a 5xx."""
    before = api.total_count()
    resp = post_raw(api, body)
    assert resp.status_code == 400, describe(resp)
    assert resp.json().get("error") in ("MALFORMED_JSON", "VALIDATION_ERROR"), describe(resp)
    assert api.total_count() == before


def test_duplicate_keys_do_not_crash(api):
    resp = post_raw(api, b'{"title": "a", "title": "b", "author": "c", "price": "1.00"}')
    assert resp.status_code in (201, 400), describe(resp)


# --------------------------------------------------------------------------
# media type


@pytest.mark.parametrize("ctype", ["text/plain", None, "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/xml", "json"])
def test_non_json_content_type_is_415(api, ctype):
    body = json.dumps({"title": "t", "author": "a", "price": "1.00"}).encode()
    before = api.total_count()
    assert_error(post_raw(api, body, content_type=ctype), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert api.total_count() == before


def test_non_json_content_type_on_put_is_415(api):
    book = api.create_book()
    assert_error(post_raw(api, b'{"title":"x"}', content_type="text/plain", method="PUT",
                          path=f"/v1/books/{book['id']}"), 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON",
                                   "application/json;charset=UTF-8"])
def test_json_content_type_variants_accepted(api, ctype):
    body = json.dumps({"title": "ctype", "author": "a", "price": "1.00"}).encode()
    assert_status(post_raw(api, body, content_type=ctype), 201)


# --------------------------------------------------------------------------
# body size


def padded_body(total):
    """A valid JSON object of exactly `total` bytes (its description is too long,
    so a daemon that reads it answers 400, not 201)."""
    head = b'{"title":"big","author":"a","price":"1.00","description":"'
    tail = b'"}'
    return head + b"d" * (total - len(head) - len(tail)) + tail


def test_body_over_1mib_content_length_is_413(api, port):
    body = padded_body(MIB + 1)
    head = (f"POST /v1/books HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    status, headers, rbody = raw_exchange(port, head, [body[i:i + 65536] for i in range(0, len(body), 65536)],
                                          timeout=10)
    assert status == 413, (status, headers, rbody[:300])
    assert json_error(status, headers, rbody)["error"] == "PAYLOAD_TOO_LARGE"


def test_huge_content_length_is_413_without_reading(api, port):
    head = (f"POST /v1/books HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 107374182400\r\n\r\n").encode()
    status, headers, rbody = raw_exchange(port, head, [b"{"], timeout=5)
    assert status == 413, (status, headers, rbody[:300])
    assert json_error(status, headers, rbody)["error"] == "PAYLOAD_TOO_LARGE"


def test_body_over_1mib_chunked_is_413(api, port):
    head = (f"POST /v1/books HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"d" * 65536
    first = b'{"title":"big","author":"a","price":"1.00","description":"'
    chunks = [b"%x\r\n" % len(first) + first + b"\r\n"]
    chunks += [b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(32)]  # 2 MiB
    chunks += [b'2\r\n"}\r\n', b"0\r\n\r\n"]
    status, headers, rbody = raw_exchange(port, head, chunks, timeout=10)
    assert status == 413, (status, headers, rbody[:300])
    assert json_error(status, headers, rbody)["error"] == "PAYLOAD_TOO_LARGE"


def test_body_of_exactly_1mib_is_read(api):
    resp = post_raw(api, padded_body(MIB))
    # read and validated (description too long), not refused for size
    assert_error(resp, 400, "VALIDATION_ERROR")


def test_small_chunked_body_is_accepted(api, port):
    body = json.dumps({"title": "chunked", "author": "a", "price": "2.50"}).encode()
    head = (f"POST /v1/books HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    chunks = [b"%x\r\n" % len(body[:10]) + body[:10] + b"\r\n",
              b"%x\r\n" % len(body[10:]) + body[10:] + b"\r\n", b"0\r\n\r\n"]
    status, headers, rbody = raw_exchange(port, head, chunks)
    assert status == 201, (status, rbody[:300])
    assert json.loads(rbody)["title"] == "chunked"


# --------------------------------------------------------------------------
# routes and methods


@pytest.mark.parametrize("path", ["/", "/nope", "/v1", "/v1/book", "/v1/books/1/extra", "/v2/books",
                                  "/v1/books/1/", "/health/x", "/V1/BOOKS",
                                  "/" + "a" * 4000])
def test_unknown_route_is_404(api, path):
    assert_error(api.get(path), 404, "NOT_FOUND")


def allow_set(resp):
    allow = resp.headers.get("Allow")
    assert allow, f"405 without an Allow header{describe(resp)}"
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


@pytest.mark.parametrize("method,path,expected", [
    ("PATCH", "/v1/books/1", {"GET", "PUT", "DELETE"}),
    ("POST", "/v1/books/1", {"GET", "PUT", "DELETE"}),
    ("DELETE", "/v1/books", {"GET", "POST"}),
    ("PUT", "/v1/books", {"GET", "POST"}),
    ("PATCH", "/v1/books", {"GET", "POST"}),
    ("POST", "/health", {"GET"}),
    ("DELETE", "/livez", {"GET"}),
    ("POST", "/metrics", {"GET"}),
    ("PUT", "/openapi.json", {"GET"}),
])
def test_wrong_method_is_405_with_allow(api, method, path, expected):
    resp = api.request(method, path, json={"title": "x"})
    assert_error(resp, 405, "METHOD_NOT_ALLOWED")
    allowed = allow_set(resp)
    assert expected <= allowed, f"Allow {allowed} lacks {expected - allowed}{describe(resp)}"
    assert method not in allowed, describe(resp)


def test_405_on_bad_id_route_still_405_or_400(api):
    resp = api.request("PATCH", "/v1/books/abc")
    assert resp.status_code in (400, 405), describe(resp)


# --------------------------------------------------------------------------
# hostile input


@pytest.mark.parametrize("shape", ["array", "object", "in-field"])
def test_deeply_nested_json_is_400(api, shape):
    depth = 100000
    if shape == "array":
        body = b"[" * depth + b"]" * depth
    elif shape == "object":
        body = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        body = b'{"title":' + b"[" * depth + b"]" * depth + b',"author":"a","price":"1.00"}'
    resp = post_raw(api, body)
    assert resp.status_code == 400, describe(resp)
    assert resp.json().get("error") in ("MALFORMED_JSON", "VALIDATION_ERROR"), describe(resp)


def test_deeply_nested_unclosed_json_is_400(api):
    resp = post_raw(api, b"[" * 500000)
    assert resp.status_code == 400, describe(resp)


def test_huge_header_is_rejected_not_crash(port):
    head = (f"GET /v1/books HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: {'a' * 200000}\r\n"
            f"Connection: close\r\n\r\n").encode()
    try:
        status, headers, body = raw_exchange(port, head, timeout=5)
    except (ConnectionError, OSError):
        return  # closing the connection is an acceptable answer
    assert 400 <= status < 500, (status, headers, body[:300])


def test_many_headers_rejected_not_crash(port):
    lines = "".join(f"X-H{i}: v\r\n" for i in range(5000))
    head = f"GET /v1/books HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{lines}Connection: close\r\n\r\n".encode()
    try:
        status, headers, body = raw_exchange(port, head, timeout=5)
    except (ConnectionError, OSError):
        return
    assert status < 500, (status, headers, body[:300])


def test_very_long_url_not_5xx(port):
    head = (f"GET /v1/books?limit=1&x={'a' * 100000} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Connection: close\r\n\r\n").encode()
    try:
        status, headers, body = raw_exchange(port, head, timeout=5)
    except (ConnectionError, OSError):
        return
    assert status < 500, (status, headers, body[:300])


@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x02\x03\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"BREW /v1/books HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/books HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /v1/books HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello start
], ids=range(8))
def test_garbage_requests_no_crash(shared_daemon, port, garbage):
    try:
        check_garbage(port, garbage)
    finally:
        assert_serving(shared_daemon)


def check_garbage(port, garbage):
    s = socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT)
    try:
        s.sendall(garbage)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            status, headers, body = read_http_response(s, timeout=DEFAULT_TIMEOUT)
        except (ConnectionError, OSError):
            return
        assert status < 500 or status in (501, 505), (status, headers, body[:300])
    finally:
        s.close()


def test_error_bodies_have_code_and_message(api):
    # every error the API produces: status, code, message; nothing else needed
    cases = [
        (api.get("/v1/books/0"), 400, "VALIDATION_ERROR"),
        (api.get("/v1/books/987654321"), 404, "NOT_FOUND"),
        (api.get("/nope"), 404, "NOT_FOUND"),
        (api.request("PATCH", "/v1/books/1"), 405, "METHOD_NOT_ALLOWED"),
        (post_raw(api, b"{"), 400, "MALFORMED_JSON"),
        (post_raw(api, b"{}", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    ]
    for resp, status, code in cases:
        body = assert_error(resp, status, code)
        assert set(body) >= {"error", "message"}
        assert resp.headers.get("X-Request-ID"), describe(resp)
