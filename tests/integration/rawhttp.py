"""Raw HTTP/1.1 over a socket, for the tests of the HTTP edge layer
(test_http_framing.py, test_connection_limits.py): send exact bytes, read
back every response the server sends until it closes the connection, and
check the shape of a "guard rejection".

A guard rejection is the one answer the edge layer gives to a request it
refuses to frame or route: exactly one HTTP/1.1 response with a JSON body
{"error": CODE, "message": "..."} (valid UTF-8), Content-Type
application/json, a non-empty X-Request-ID and Connection: close, after
which the server closes the connection without answering anything else that
came in the same bytes.  The server may keep reading (lingering) after the
response so the client sees it; a reset (ECONNRESET) is tolerated only once
the whole response has been read."""

import errno
import json
import os
import select
import socket
import threading
import time

from harness import DEFAULT_TIMEOUT, scaled

# How long after a guard rejection the server has to close the connection.
CLOSE_WITHIN = 2.0  # seconds, before scaled()


def request_bytes(method, path, headers=(), body=b"", version="HTTP/1.1", host="127.0.0.1",
                  content_length=True):
    """One request as bytes.  headers: (name, value) pairs, sent as given;
    Host first unless host is None; Content-Length of body added when the body
    is not empty and content_length is true."""
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    for name, value in headers:
        lines.append(f"{name}: {value}")
    if body and content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body, sizes=None, n_chunks=None):
    """body in chunked coding: pieces of `sizes` bytes (cycled), or n_chunks
    roughly equal pieces, then the last chunk."""
    if n_chunks is not None:
        n = min(n_chunks, len(body)) or 1
        q, r = divmod(len(body), n)
        pieces, i = [], 0
        for k in range(n):
            size = q + (1 if k < r else 0)
            pieces.append(body[i:i + size])
            i += size
    else:
        sizes = sizes or [len(body)]
        pieces, i, k = [], 0, 0
        while i < len(body):
            n = sizes[k % len(sizes)]
            pieces.append(body[i:i + n])
            i += n
            k += 1
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


# --------------------------------------------------------------------------
# responses


class RawResponse:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as sent
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        """The first value of a header (case-insensitive name), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_values(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has_token(self, name, token):
        """A comma-separated header (Connection, ...) lists `token`."""
        return any(t.strip().lower() == token.lower()
                   for v in self.header_values(name) for t in v.split(","))

    def text(self):
        """The body decoded as UTF-8, strictly (a UnicodeDecodeError is a failure)."""
        return self.body.decode("utf-8", "strict")

    def json(self):
        return json.loads(self.text())

    def __repr__(self):
        return (f"<{self.version} {self.status} {self.reason!r} headers={self.headers} "
                f"body={self.body[:300]!r}>")


def parse_response(buf, at_eof=False, head_request=False):
    """(RawResponse, bytes consumed) of the first response in buf, or None
    when buf does not hold all of it yet.  A body without Content-Length or
    chunked coding runs to the end of the connection (at_eof).  Raises
    ValueError on bytes that are not an HTTP response."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if not buf.startswith(b"HTTP/"[:len(buf)]):
            raise ValueError(f"not an HTTP response: {buf[:200]!r}")
        return None
    raw_head = buf[:end]
    lines = raw_head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0]!r}")
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    pos = end + 4
    lower = {k.lower(): v for k, v in headers}
    if 100 <= status < 200 or status in (204, 304) or head_request:
        return RawResponse(version, status, reason, headers, b"", raw_head), pos
    if "chunked" in lower.get("transfer-encoding", "").lower():
        body = b""
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(buf[pos:eol].split(b";")[0].strip(), 16)
            pos = eol + 2
            if size == 0:
                # trailers, up to an empty line
                while True:
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        return None
                    line, pos = buf[pos:eol], eol + 2
                    if not line:
                        return RawResponse(version, status, reason, headers, body, raw_head), pos
            if len(buf) < pos + size + 2:
                return None
            body += buf[pos:pos + size]
            pos += size + 2
    if "content-length" in lower:
        n = int(lower["content-length"])
        if len(buf) < pos + n:
            return None
        return RawResponse(version, status, reason, headers, buf[pos:pos + n], raw_head), pos + n
    if not at_eof:
        return None
    return RawResponse(version, status, reason, headers, buf[pos:], raw_head), len(buf)


# --------------------------------------------------------------------------
# a connection


class RawConnection:
    """A client socket that sends exact bytes and collects what comes back.

    closed: None while open, "eof" (the server closed) or "reset"."""

    def __init__(self, port, timeout=DEFAULT_TIMEOUT, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.closed = None
        self.closed_at = None
        self.send_errors = []
        self.sent_all = threading.Event()
        self._sender = None

    def send(self, data):
        self.sock.sendall(data)

    def send_in_background(self, data, piece=65536, pieces=None):
        """Send from a thread (tolerating the server closing early), so that
        the reader sees an answer the server gives while we are still sending."""
        if pieces is None:
            pieces = [data[i:i + piece] for i in range(0, len(data), piece)] or [b""]

        def sender():
            try:
                for p in pieces:
                    self.sock.sendall(p)
            except OSError as exc:
                self.send_errors.append(exc)
            finally:
                self.sent_all.set()

        self._sender = threading.Thread(target=sender, daemon=True)
        self._sender.start()

    def _recv_some(self, deadline):
        """Read what is there by `deadline`; False when nothing more will come
        (closed) or the deadline passed."""
        if self.closed:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.closed, self.closed_at = "reset", time.monotonic()
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return True
            self.closed, self.closed_at = "reset", time.monotonic()
            return False
        if not data:
            self.closed, self.closed_at = "eof", time.monotonic()
            return False
        self.buf += data
        return True

    def read_response(self, timeout=DEFAULT_TIMEOUT, interim=False, head_request=False):
        """The next response (1xx ones skipped unless interim).  Raises
        TimeoutError, or ConnectionError if the server closes first."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_response(self.buf, at_eof=self.closed is not None, head_request=head_request)
            if parsed is not None:
                resp, used = parsed
                self.buf = self.buf[used:]
                if 100 <= resp.status < 200 and not interim:
                    continue
                return resp
            if self.closed:
                raise ConnectionError(f"connection {self.closed} before a complete response; "
                                      f"got {self.buf[:300]!r}")
            if not self._recv_some(deadline) and not self.closed:
                raise TimeoutError(f"no complete response within {timeout}s; got {self.buf[:300]!r}")

    def wait_closed(self, timeout):
        """True once the server has closed the connection (any bytes that came
        meanwhile stay in self.buf)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._recv_some(deadline)
        return self.closed is not None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self._sender is not None:
            self._sender.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# one request, everything that comes back


class Exchange:
    """What came back for some bytes sent on a new connection."""

    def __init__(self, responses, leftover, closed, first_response_at, closed_at, send_errors, sent):
        self.responses = responses
        self.leftover = leftover  # bytes after the last complete response
        self.closed = closed  # "eof", "reset" or None (still open at the deadline)
        self.first_response_at = first_response_at
        self.closed_at = closed_at
        self.send_errors = send_errors
        self.sent = sent

    @property
    def close_delay(self):
        if self.closed_at is None or self.first_response_at is None:
            return None
        return self.closed_at - self.first_response_at

    def describe(self):
        return (f"\n  sent     : {len(self.sent)} bytes, starting {self.sent[:240]!r}"
                f"\n  responses: {len(self.responses)}: "
                + "".join(f"\n    {r!r}" for r in self.responses)
                + f"\n  leftover : {self.leftover[:300]!r}"
                f"\n  closed   : {self.closed}"
                + (f" {self.close_delay:.2f}s after the first response" if self.close_delay is not None else "")
                + (f"\n  send errors: {self.send_errors}" if self.send_errors else ""))


def exchange(port, data, response_timeout=None, close_within=None, pieces=None):
    """Send `data` on a new connection (from a thread) and read every
    response until the server closes it, or until `close_within` seconds after
    the first complete response (or `response_timeout` without one)."""
    response_timeout = scaled(3) if response_timeout is None else response_timeout
    close_within = scaled(CLOSE_WITHIN) if close_within is None else close_within
    conn = RawConnection(port)
    responses = []
    first_at = None
    try:
        conn.send_in_background(data, pieces=pieces)
        deadline = time.monotonic() + response_timeout
        while True:
            try:
                parsed = parse_response(conn.buf, at_eof=conn.closed is not None)
            except ValueError:
                parsed = None  # garbage: left in leftover
                if not conn.closed and conn._recv_some(deadline):
                    continue
                break
            if parsed is not None:
                resp, used = parsed
                conn.buf = conn.buf[used:]
                responses.append(resp)
                if first_at is None:
                    first_at = time.monotonic()
                    deadline = first_at + close_within
                continue
            if conn.closed or not conn._recv_some(deadline):
                if conn.closed and conn.buf:
                    parsed = parse_response(conn.buf, at_eof=True)
                    if parsed is not None:
                        responses.append(parsed[0])
                        conn.buf = conn.buf[parsed[1]:]
                        first_at = first_at or conn.closed_at
                break
        return Exchange(responses, conn.buf, conn.closed, first_at, conn.closed_at, conn.send_errors, data)
    finally:
        conn.close()


def assert_json_error(resp, status, code=None, context=""):
    """resp is a JSON error: status (an int or a set), Content-Type
    application/json, X-Request-ID, a strict-UTF-8 JSON body {"error": code,
    "message": non-empty}.  code may be a dict {status: code}."""
    statuses = {status} if isinstance(status, int) else set(status)
    assert resp.status in statuses, f"expected status {sorted(statuses)}, got {resp.status}{context}"
    ctype = resp.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/json", (
        f"Content-Type {ctype!r}, expected application/json{context}")
    assert (resp.header("X-Request-ID") or "").strip(), f"no X-Request-ID{context}"
    try:
        text = resp.text()
    except UnicodeDecodeError as exc:
        raise AssertionError(f"the error body is not valid UTF-8 ({exc}){context}")
    try:
        doc = json.loads(text)
    except ValueError:
        raise AssertionError(f"the error body is not JSON{context}")
    assert isinstance(doc, dict), f"the error body is not an object{context}"
    if isinstance(code, dict):
        code = code.get(resp.status)
    if code is not None:
        assert doc.get("error") == code, f"expected error code {code}{context}"
    else:
        assert isinstance(doc.get("error"), str) and doc["error"], f"no error code{context}"
    assert isinstance(doc.get("message"), str) and doc["message"].strip(), f"no message{context}"
    return doc


def assert_single_response(ex, status, code=None):
    """Exactly one response to the bytes sent, a JSON error; nothing else."""
    ctx = ex.describe()
    assert ex.responses, f"no response{ctx}"
    assert len(ex.responses) == 1 and not ex.leftover, f"expected exactly one response{ctx}"
    resp = ex.responses[0]
    assert resp.version == "HTTP/1.1", f"expected an HTTP/1.1 response{ctx}"
    assert_json_error(resp, status, code, ctx)
    return resp


def assert_guard_rejection(ex, status, code):
    """A guard rejection (see the module docstring): exactly one response,
    a JSON error with Connection: close, then the connection closed within
    CLOSE_WITHIN (scaled) of it."""
    resp = assert_single_response(ex, status, code)
    ctx = ex.describe()
    assert resp.has_token("Connection", "close"), f"no Connection: close{ctx}"
    assert ex.closed is not None, (f"the connection was still open {scaled(CLOSE_WITHIN)}s after the "
                                   f"response{ctx}")
    assert ex.close_delay is not None and ex.close_delay <= scaled(CLOSE_WITHIN) + 0.1, ctx
    return resp


# --------------------------------------------------------------------------
# process state


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
