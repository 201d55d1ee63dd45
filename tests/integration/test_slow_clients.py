"""Slow and idle clients must not block anyone else, and are cut off after
HTTP_REQUEST_TIMEOUT_MS."""

import select
import socket
import time

import requests

from harness import assert_status, read_http_response

PROMPT = 2.0  # seconds: a correctness bound (nothing blocked), not a benchmark


def open_half_sent(port, n, payload=b"GET /v1/bo"):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(payload)
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def wait_all_closed(socks, within):
    """Wait until the server has closed every socket (EOF or reset).
    Returns the number still open at the deadline."""
    open_ = {s.fileno(): s for s in socks}
    deadline = time.monotonic() + within
    while open_ and time.monotonic() < deadline:
        readable, _, _ = select.select(list(open_.values()), [], [], max(0.0, deadline - time.monotonic()))
        for s in readable:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, OSError):
                data = b""
            if not data:  # EOF: closed by the server (a 408 before it is fine)
                open_.pop(s.fileno(), None)
    return len(open_)


def test_half_sent_requests_do_not_block_others(daemons):
    d = daemons.start()  # default HTTP_REQUEST_TIMEOUT_MS (15 s)
    book = d.api.create_book(title="prompt")
    socks = open_half_sent(d.port, 50)
    try:
        for i in range(10):
            for path in ("/v1/books", f"/v1/books/{book['id']}", "/health", "/livez"):
                r, took = timed(lambda: requests.get(d.url(path), timeout=PROMPT + 3))
                assert_status(r, 200)
                assert took < PROMPT, f"GET {path} took {took:.2f}s with 50 half-sent requests open"
            r, took = timed(lambda: requests.post(d.url("/v1/books"), json={"title": f"s{i}", "author": "a",
                                                                            "price": "1"}, timeout=PROMPT + 3))
            assert_status(r, 201)
            assert took < PROMPT
        # more stalled clients arriving meanwhile change nothing
        socks += open_half_sent(d.port, 50, b"POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        r, took = timed(lambda: requests.get(d.url("/v1/books"), timeout=PROMPT + 3))
        assert_status(r, 200)
        assert took < PROMPT
        assert d.alive()
    finally:
        close_all(socks)


def test_request_timeout_closes_stalled_connections(daemons):
    d = daemons.start(env={"HTTP_REQUEST_TIMEOUT_MS": "1000"})
    t0 = time.monotonic()
    half_line = open_half_sent(d.port, 50)
    half_headers = open_half_sent(d.port, 5, b"GET /v1/books HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    half_body = open_half_sent(d.port, 5, b"POST /v1/books HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ti")
    silent = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(5)]
    all_socks = half_line + half_headers + half_body + silent
    try:
        still_open = wait_all_closed(all_socks, within=6)
        assert still_open == 0, (f"{still_open} of {len(all_socks)} stalled connections still open "
                                 f"{time.monotonic() - t0:.1f}s later (HTTP_REQUEST_TIMEOUT_MS=1000)")
        r = requests.get(d.url("/v1/books"), timeout=5)
        assert_status(r, 200)
        assert d.alive()
    finally:
        close_all(all_socks)


def test_trickling_client_is_cut_off(daemons):
    """A client sending one byte now and then still must finish within the deadline."""
    d = daemons.start(env={"HTTP_REQUEST_TIMEOUT_MS": "1000"})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    request = b"GET /v1/books HTTP/1.1\r\nHost: x\r\nX-Trickle: " + b"a" * 200
    t0 = time.monotonic()
    closed = False
    try:
        for byte in request:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            r, _, _ = select.select([s], [], [], 0.2)
            if r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 4"):
                    closed = True
                    break
            if time.monotonic() - t0 > 8:
                break
    finally:
        s.close()
    assert closed, "a trickling client was never cut off (whole-request deadline, not per-read)"
    assert time.monotonic() - t0 < 6


def test_idle_keepalive_connection_closed(daemons):
    d = daemons.start(env={"HTTP_REQUEST_TIMEOUT_MS": "1000"})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_http_response(s, 5)
        assert status == 200
        assert headers.get("connection", "").lower() != "close", "expected keep-alive for HTTP/1.1"
        t0 = time.monotonic()
        assert wait_all_closed([s], within=5) == 0, "idle keep-alive connection not closed"
        took = time.monotonic() - t0
        assert took >= 0.5, f"closed after {took:.2f}s, before the idle limit of 1 s"
    finally:
        s.close()
