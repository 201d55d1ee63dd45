"""The shipped HAProxy configuration (data/haproxy/bookstore-haproxy.cfg)
with Debian's HAProxy in front of two Books and two Orders daemons, as on
two application hosts: health checks, a host killed or stopped under steady
load without a failed GET, X-Request-ID passed through or made, the
client's address in X-Forwarded-For and nowhere a forged one, and which
requests HAProxy may send twice."""

import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from harness import (REPO_ROOT, assert_status, describe, free_port, metric_value, raw_exchange,
                     scaled, scrape, wait_for)
from rawhttp import request_bytes

CONFIG = REPO_ROOT / "data" / "haproxy" / "bookstore-haproxy.cfg"

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="haproxy is installed by ./dev.sh deps")


class HAProxy:
    """haproxy -db with the shipped file, its addresses and ports replaced."""

    def __init__(self, tmp_path, books, orders, timeout_server=None, timeout_check=None):
        self.books_port, self.orders_port = free_port(), free_port()
        text = CONFIG.read_text()
        text = text.replace("log /dev/log local0", "log stderr format raw local0")
        text = text.replace("bind :8001", f"bind 127.0.0.1:{self.books_port}")
        text = text.replace("bind :8082", f"bind 127.0.0.1:{self.orders_port}")
        for name, daemons, port in (("books", books, 8001), ("orders", orders, 8082)):
            for i, d in enumerate(daemons, 1):
                text = re.sub(rf"server app{i} 192\.0\.2\.1{i}:{port} check",
                              f"server app{i} 127.0.0.1:{d.port} check", text)
        assert "192.0.2." not in text, "every server line was replaced"
        if timeout_server is not None:
            text = text.replace("timeout server 15s", f"timeout server {timeout_server}")
        if timeout_check is not None:
            text = text.replace("timeout check 2s", f"timeout check {timeout_check}")
        self.path = tmp_path / "haproxy.cfg"
        self.path.write_text(text)
        self.log_path = tmp_path / "haproxy.log"
        check = subprocess.run(["haproxy", "-c", "-f", str(self.path)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.path)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for port in (self.books_port, self.orders_port):
            wait_for(lambda p=port: _connects(p), scaled(10), message=f"haproxy on {port}")

    def books(self, path):
        return f"http://127.0.0.1:{self.books_port}{path}"

    def orders(self, path):
        return f"http://127.0.0.1:{self.orders_port}{path}"

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def logged(self, request_id):
        """(server, status, retries) from HAProxy's log line for one request;
        retries as logged: "+1" is one more attempt, on another server."""
        pattern = re.compile(r" \w+/(\S+) \S+ (-?\d+) .* \d+/\d+/\d+/\d+/(\+?\d+) \d+/\d+ "
                             r"\{" + re.escape(request_id) + r"\}")
        wait_for(lambda: pattern.search(self.log_text()), scaled(5),
                 message=f"HAProxy logged {request_id}")
        server, status, retries = pattern.search(self.log_text()).groups()
        return server, int(status), retries

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def cluster(odaemons, pg, tmp_path):
    """Two Books on one database, two Orders on another, both behind HAProxy;
    Orders reach Books through HAProxy too."""
    env = {"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_WRITES": "1", "RATE_LIMIT_BURST": "2"}
    books_db = pg.new_db()
    books = [odaemons.start(db=books_db, env=env, name=f"books-app{i}") for i in (1, 2)]
    orders_db = pg.new_db()
    # Orders needs a Books URL before HAProxy exists: the first Books directly
    orders = [odaemons.start_orders(books=books[0], db=orders_db, name=f"orders-app{i}")
              for i in (1, 2)]
    proxy = HAProxy(tmp_path, books, orders)
    wait_for(lambda: requests.get(proxy.books("/health"), timeout=2).ok, scaled(10),
             message="Books through HAProxy")
    yield proxy, books, orders
    proxy.close()


class SteadyGets(threading.Thread):
    """GET through HAProxy over keep-alive until stopped; counts failures."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.ok, self.failed = url, 0, []
        self.stopping = threading.Event()

    def run(self):
        with requests.Session() as s:
            while not self.stopping.is_set():
                try:
                    r = s.get(self.url, timeout=scaled(10))
                    if r.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(r.status_code)
                except requests.RequestException as exc:
                    self.failed.append(repr(exc))

    def stop(self):
        self.stopping.set()
        self.join(scaled(20))
        return self


def served_by(daemon, request_id):
    return any(r.get("REQUEST_ID") == request_id for r in daemon.access_records())


def test_requests_spread_and_request_ids(cluster):
    proxy, books, _ = cluster
    with requests.Session() as s:
        for _ in range(20):
            assert_status(s.get(proxy.books("/v1/books?limit=1"), timeout=10), 200)
    counts = [len([r for r in d.access_records() if r.get("HTTP_PATH") == "/v1/books"])
              for d in books]
    assert all(c > 0 for c in counts), f"both hosts serve: {counts}"
    # the client's X-Request-ID reaches the daemon and HAProxy's log
    rid = f"client-{uuid.uuid4()}"
    resp = requests.get(proxy.books("/v1/books?limit=1"), headers={"X-Request-ID": rid}, timeout=10)
    assert resp.headers["X-Request-ID"] == rid
    wait_for(lambda: any(served_by(d, rid) for d in books), scaled(5), message="the id logged")
    wait_for(lambda: rid in proxy.log_text(), scaled(5), message="the id in HAProxy's log")
    # none: HAProxy makes one, the daemon answers and logs that one
    resp = requests.get(proxy.books("/v1/books?limit=1"), timeout=10)
    made = resp.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f-]{36}", made), made
    wait_for(lambda: made in proxy.log_text(), scaled(5), message="HAProxy logged its own id")


def test_a_forged_forwarded_for_is_replaced(cluster):
    """The daemons trust HAProxy's X-Forwarded-For (TRUSTED_PROXIES); HAProxy
    drops the client's own, so forged addresses never reach the rate limit:
    each host sees one client, the real one."""
    proxy, books, _ = cluster
    for i in range(6):
        resp = requests.post(proxy.books("/v1/books"), timeout=scaled(10),
                             headers={"X-Forwarded-For": f"203.0.113.{i}"},
                             json={"title": f"forged {i}", "author": "A", "price": "1.00"})
        assert resp.status_code in (201, 429), describe(resp)
    clients = [metric_value(scrape(d), "http_rate_limit_clients") for d in books]
    assert sorted(clients) == [1, 1] or sorted(clients) == [0, 1], clients
    posted = [r for d in books for r in d.access_records() if r.get("HTTP_METHOD") == "POST"]
    assert posted and {r.get("CLIENT_ADDRESS") for r in posted} == {"127.0.0.1"}, posted


def test_a_host_killed_under_load_fails_no_get(cluster):
    proxy, books, _ = cluster
    book = requests.post(proxy.books("/v1/books"), timeout=10,
                         json={"title": "steady", "author": "A", "price": "2.00"}).json()
    load = SteadyGets(proxy.books(f"/v1/books/{book['id']}"))
    load.start()
    time.sleep(scaled(1))
    books[1].kill()
    time.sleep(scaled(4))  # HAProxy takes it out within 3 s (3 failed checks)
    load.stop()
    assert load.failed == [], f"{len(load.failed)} failed of {load.ok + len(load.failed)}: " \
                              f"{load.failed[:5]}"
    assert load.ok > 0


def test_a_host_stopped_under_load_drains(cluster):
    proxy, books, _ = cluster
    book = requests.post(proxy.books("/v1/books"), timeout=10,
                         json={"title": "drain", "author": "A", "price": "2.00"}).json()
    load = SteadyGets(proxy.books(f"/v1/books/{book['id']}"))
    load.start()
    time.sleep(scaled(1))
    books[0].send_signal(signal.SIGTERM)
    assert books[0].wait(scaled(20)) == 0
    time.sleep(scaled(1))
    load.stop()
    assert load.failed == [], f"{len(load.failed)} failed of {load.ok + len(load.failed)}: " \
                              f"{load.failed[:5]}"


def test_orders_through_haproxy_with_retried_keys(cluster):
    proxy, books, orders = cluster
    book = requests.post(proxy.books("/v1/books"), timeout=10,
                         json={"title": "ordered", "author": "A", "price": "4.00"}).json()
    key = str(uuid.uuid4())
    first = requests.post(proxy.orders("/v1/orders"), headers={"Idempotency-Key": key},
                          json={"book_id": book["id"], "quantity": 1}, timeout=scaled(10))
    assert_status(first, 201)
    again = requests.post(proxy.orders("/v1/orders"), headers={"Idempotency-Key": key},
                          json={"book_id": book["id"], "quantity": 1}, timeout=scaled(10))
    assert again.status_code in (200, 201), describe(again)
    assert again.json()["id"] == first.json()["id"]


def send_in_one_write(port, method, path, payload, headers=()):
    """A request with the head and the JSON body (none when payload is None)
    in one write, as curl sends a small one; returns (status, X-Request-ID
    sent). HAProxy keeps a request to send again only when it had all of it
    before sending it on; requests writes the body after the head, so HAProxy
    would never retry its POSTs whatever the configuration says."""
    label = payload["title"] if payload is not None else path.strip("/")
    request_id = f"{method}-{label.replace(' ', '-').replace('/', '-')}-{uuid.uuid4()}"
    body = json.dumps(payload).encode() if payload is not None else b""
    data = request_bytes(method, path, body=body,
                         headers=[*([("Content-Type", "application/json")] if body else []),
                                  ("X-Request-ID", request_id), ("Connection", "close"),
                                  *headers])
    status, _, _ = raw_exchange(port, data, timeout=scaled(20))
    return status, request_id


def test_only_safe_requests_are_sent_twice(odaemons, pg, tmp_path):
    """A host that takes a request and never answers (SIGSTOP): HAProxy
    sends a GET to the other host, but gives a POST to Books its timeout
    instead of a second copy, with an Idempotency-Key too (Books ignores the
    header; only Orders answers a repeated key with the same order). The
    stopped host's health checks hang rather than fail, so it stays in
    rotation and takes its share of every kind of request. PUT and DELETE,
    idempotent but not safe, go once too: a DELETE sent again would answer
    404 for a book it had deleted."""
    db = pg.new_db()
    books = [odaemons.start(db=db, name=f"books-app{i}") for i in (1, 2)]
    orders = [odaemons.start_orders(books=books[0], name=f"orders-app{i}") for i in (1, 2)]
    proxy = HAProxy(tmp_path, books, orders, timeout_server="2s", timeout_check="120s")
    try:
        wait_for(lambda: requests.get(proxy.books("/health"), timeout=2).ok, scaled(10),
                 message="Books through HAProxy")
        to_put = [books[1].api.create_book(title=f"to put {i}") for i in range(4)]
        to_delete = [books[1].api.create_book(title=f"to delete {i}") for i in range(4)]
        books[0].send_signal(signal.SIGSTOP)
        try:
            gets = [requests.get(proxy.books("/v1/books?limit=1"), timeout=scaled(20))
                    for _ in range(4)]
            assert [g.status_code for g in gets] == [200] * 4
            posts = [send_in_one_write(proxy.books_port, "POST", "/v1/books",
                                       {"title": f"once {i}", "author": "A", "price": "1.00"})
                     for i in range(4)]
            keyed = [send_in_one_write(proxy.books_port, "POST", "/v1/books",
                                       {"title": f"keyed {i}", "author": "A", "price": "1.00"},
                                       headers=[("Idempotency-Key", str(uuid.uuid4()))])
                     for i in range(4)]
            puts = [send_in_one_write(proxy.books_port, "PUT", f"/v1/books/{b['id']}",
                                      {"title": f"put {i}", "author": "A", "price": "2.00"})
                    for i, b in enumerate(to_put)]
            deletes = [send_in_one_write(proxy.books_port, "DELETE", f"/v1/books/{b['id']}",
                                         None)
                       for b in to_delete]
        finally:
            books[0].send_signal(signal.SIGCONT)
        codes = [code for code, _ in posts + keyed]
        assert set(codes) <= {201, 502, 503, 504}, codes
        assert set(code for code, _ in puts) <= {200, 502, 503, 504}, puts
        assert set(code for code, _ in deletes) <= {204, 502, 503, 504}, deletes
        # each POST, PUT and DELETE went to one host only, and the stopped host took some
        logged = {rid: proxy.logged(rid) for _, rid in posts + keyed + puts + deletes}
        again = {rid: line for rid, line in logged.items() if line[2] != "0"}
        assert again == {}, f"sent twice (server, status, retries): {again}"
        for kind, sent in (("POST", posts), ("keyed POST", keyed), ("PUT", puts),
                           ("DELETE", deletes)):
            assert any(logged[rid][:2] == ("app1", 504) for _, rid in sent), \
                f"no {kind} reached the stopped host: {[logged[rid] for _, rid in sent]}"
        # every POST that timed out on the stopped host may still be stored there
        # once it runs again, but none was stored twice
        time.sleep(scaled(1))
        titles = [b["title"] for b in requests.get(books[1].url("/v1/books?limit=100"),
                                                   timeout=10).json()]
        assert sorted(titles) == sorted(set(titles)), titles
    finally:
        proxy.close()
