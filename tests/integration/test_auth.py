"""Bearer tokens (API_TOKENS_FILE, or the credential api-tokens): writes on
Books and Orders, and reads of orders, need `Authorization: Bearer <token>`;
the catalogue's reads, /health, /livez, /metrics and /openapi.json stay open.
A refused request changes nothing; SIGHUP re-reads the file without dropping
connections; a malformed file is exit 78 naming the line; the worker's jobs
send their own token; no token ever shows in a log, a body or /metrics."""

import hashlib
import http.client
import json
import secrets
import signal
import socket

import pytest

from harness import (EX_CONFIG, ServicePair, assert_error, assert_status, free_port,
                     metric_value, scaled, scrape, wait_for)
from worker_harness import add_job, start_worker, wait_result
from worker_harness import redis_server, rc, workers  # noqa: F401 - fixtures


def sha256(token):
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_text(tokens):
    """A tokens file: {name: token} as name:sha256 lines, with a comment and a blank line."""
    lines = ["# name:sha256 of the token", ""]
    lines += [f"{name}:{sha256(token)}" for name, token in tokens.items()]
    return "\n".join(lines) + "\n"


class Tokens:
    """A tokens file in the test's directory, and the tokens it lists."""

    def __init__(self, path, **tokens):
        self.path = path
        self.tokens = {}
        self.write(**tokens)

    def write(self, **tokens):
        self.tokens = tokens
        self.path.write_text(tokens_text(tokens))

    def header(self, name):
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def new_token():
    return "tok-" + secrets.token_urlsafe(24)


@pytest.fixture
def tokens(tmp_path):
    return Tokens(tmp_path / "api-tokens", admin=new_token(), worker=new_token())


@pytest.fixture
def pair(odaemons, tokens):
    env = {"API_TOKENS_FILE": tokens.path}
    return ServicePair(odaemons, books_env=env, orders_env=env)


def assert_unauthorized(resp):
    assert_error(resp, 401, "UNAUTHORIZED")
    assert resp.headers.get("WWW-Authenticate") == "Bearer", resp.headers


def bad_headers(tokens):
    """No header, garbled ones, a wrong token, the hash instead of the token."""
    admin = tokens.tokens["admin"]
    return [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {admin}"},
        {"Authorization": f"Bearer {admin} extra"},
        {"Authorization": f"Bearer {admin}x"},
        {"Authorization": f"Bearer {new_token()}"},
        {"Authorization": f"Bearer {sha256(admin)}"},
    ]


def book_state(api, book_id):
    resp = api.get(f"/v1/books/{book_id}")
    return resp.status_code, resp.json() if resp.status_code == 200 else None


# --------------------------------------------------------------------------
# Books


def test_books_writes_without_a_valid_token_change_nothing(pair, tokens):
    api = pair.books_api
    admin = tokens.header("admin")
    resp = api.post("/v1/books", json={"title": "Kept", "author": "A", "price": "5.00"},
                    headers=admin)
    assert_status(resp, 201)
    book = resp.json()
    before = book_state(api, book["id"])
    count = api.total_count()

    for headers in bad_headers(tokens):
        assert_unauthorized(api.post("/v1/books", json={"title": "New", "author": "B",
                                                        "price": "1.00"}, headers=headers))
        assert_unauthorized(api.put(f"/v1/books/{book['id']}",
                                    json={"title": "Changed", "author": "B", "price": "2.00"},
                                    headers=headers))
        assert_unauthorized(api.request("PATCH", f"/v1/books/{book['id']}",
                                        json={"title": "Changed"}, headers=headers))
        assert_unauthorized(api.delete(f"/v1/books/{book['id']}", headers=headers))
        # a body that is not even JSON is never read: still 401, not 400
        assert_unauthorized(api.post("/v1/books", data=b"{not json",
                                     headers={**headers, "Content-Type": "application/json"}))

    assert api.total_count() == count
    assert book_state(api, book["id"]) == before


def test_books_writes_with_the_token(pair, tokens):
    api = pair.books_api
    for name in ("admin", "worker"):
        headers = tokens.header(name)
        resp = api.post("/v1/books", json={"title": name, "author": "A", "price": "5.00"},
                        headers=headers)
        assert_status(resp, 201)
        book_id = resp.json()["id"]
        resp = api.put(f"/v1/books/{book_id}",
                       json={"title": "Renamed", "author": "A", "price": "6.00"}, headers=headers)
        assert_status(resp, 200)
        assert api.get(f"/v1/books/{book_id}").json()["title"] == "Renamed"
        assert_status(api.delete(f"/v1/books/{book_id}", headers=headers), 204)
        assert api.get(f"/v1/books/{book_id}").status_code in (404, 410)


def test_books_reads_and_service_routes_stay_open(pair, tokens):
    book = pair.books_api.post("/v1/books", json={"title": "Open", "author": "A", "price": "1.00"},
                               headers=tokens.header("admin")).json()
    for daemon in (pair.books, pair.orders):
        for path in ("/health", "/livez", "/metrics", "/openapi.json"):
            assert_status(daemon.api.get(path), 200)
    assert_status(pair.books_api.get("/v1/books"), 200)
    assert_status(pair.books_api.get(f"/v1/books/{book['id']}"), 200)
    assert_status(pair.books_api.request("HEAD", "/v1/books"), 200)


# --------------------------------------------------------------------------
# Orders


def test_orders_need_the_token_to_write_and_to_read(pair, tokens):
    admin = tokens.header("admin")
    book = pair.books_api.post("/v1/books", json={"title": "O", "author": "A", "price": "3.00"},
                               headers=admin).json()
    api = pair.api
    order = api.create_order(book["id"], 1, key="auth-order-1", headers=admin).json()
    count = int(api.get("/v1/orders", params={"limit": 1}, headers=admin).headers["X-Total-Count"])

    for headers in bad_headers(tokens):
        assert_unauthorized(api.create_order(book["id"], 2, key=f"auth-{new_token()}",
                                             headers=headers, status=None))
        assert_unauthorized(api.get("/v1/orders", headers=headers))
        assert_unauthorized(api.get(f"/v1/orders/{order['id']}", headers=headers))
        head = api.request("HEAD", "/v1/orders", headers=headers)
        assert (head.status_code, head.headers.get("WWW-Authenticate")) == (401, "Bearer")

    resp = api.get("/v1/orders", params={"limit": 1}, headers=admin)
    assert_status(resp, 200)
    assert int(resp.headers["X-Total-Count"]) == count
    resp = api.get(f"/v1/orders/{order['id']}", headers=tokens.header("worker"))
    assert_status(resp, 200)
    assert resp.json()["id"] == order["id"]


# --------------------------------------------------------------------------
# reload


def keepalive_request(conn, method, path, headers=None, body=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.getheader("WWW-Authenticate"), resp.read()


def test_reload_adds_and_revokes_without_dropping_connections(pair, tokens):
    daemon = pair.books
    old = tokens.tokens["admin"]
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=5)
    book = json.dumps({"title": "Reload", "author": "A", "price": "1.00"})
    json_type = {"Content-Type": "application/json"}
    status, _, _ = keepalive_request(conn, "POST", "/v1/books", {**json_type, **tokens.header("admin")},
                                     book)
    assert status == 201
    local = conn.sock.getsockname()
    count = pair.books_api.total_count()

    fresh = new_token()
    tokens.write(rotated=fresh, worker=tokens.tokens["worker"])  # admin revoked, rotated added
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_for_log(lambda r: "tokens reloaded" in r.get("MESSAGE", ""), timeout=10)

    # the same connection: the revoked token is refused, the new one works
    status, challenge, _ = keepalive_request(conn, "POST", "/v1/books",
                                             {**json_type, "Authorization": f"Bearer {old}"}, book)
    assert (status, challenge) == (401, "Bearer")
    assert pair.books_api.total_count() == count
    status, _, _ = keepalive_request(conn, "POST", "/v1/books",
                                     {**json_type, "Authorization": f"Bearer {fresh}"}, book)
    assert status == 201
    assert conn.sock is not None and conn.sock.getsockname() == local
    conn.close()
    assert pair.books_api.total_count() == count + 1


def test_reload_of_a_bad_file_keeps_the_tokens(pair, tokens):
    daemon = pair.orders
    admin = tokens.header("admin")
    tokens.path.write_text(tokens_text(tokens.tokens) + "not a token line\n")
    daemon.send_signal(signal.SIGHUP)
    rec = daemon.wait_for_log(lambda r: "reloading tokens failed" in r.get("MESSAGE", ""),
                              timeout=10)[0]
    assert "line 5" in rec["MESSAGE"], rec
    assert daemon.alive()
    assert_status(pair.api.get("/v1/orders", headers=admin), 200)
    assert_unauthorized(pair.api.get("/v1/orders"))


# --------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("kind", ["books", "orders"])
def test_malformed_file_is_exit_78_naming_the_line(odaemons, tmp_path, kind):
    secret = new_token()
    path = tmp_path / "bad-tokens"
    path.write_text(f"# ok\nadmin:{sha256(new_token())}\n{secret}\n")
    env = {"API_TOKENS_FILE": path}
    if kind == "books":
        d = odaemons.spawn(odaemons.env_for(odaemons.cluster.dsn_uri(odaemons.cluster.new_db()),
                                            free_port(), env), kind="books")
    else:
        d = odaemons.spawn(odaemons.env_for_orders(
            odaemons.cluster.dsn_uri(odaemons.cluster.new_db()), "http://127.0.0.1:9", free_port(),
            env), kind="orders")
    assert d.wait(20) == EX_CONFIG
    text = d.stderr_text()
    assert "line 3" in text and "API_TOKENS_FILE" in text, text
    assert secret not in text


def test_missing_file_is_exit_78(odaemons, tmp_path):
    env = {"API_TOKENS_FILE": tmp_path / "nowhere"}
    d = odaemons.spawn(odaemons.env_for(odaemons.cluster.dsn_uri(odaemons.cluster.new_db()),
                                        free_port(), env))
    assert d.wait(20) == EX_CONFIG
    assert "API_TOKENS_FILE" in d.stderr_text()


def test_credential_api_tokens(odaemons, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    token = new_token()
    (creds / "api-tokens").write_text(tokens_text({"ops": token}))
    books = odaemons.start(env={"CREDENTIALS_DIRECTORY": creds})
    assert_unauthorized(books.api.post("/v1/books", json={"title": "C", "author": "A",
                                                          "price": "1.00"}))
    resp = books.api.post("/v1/books", json={"title": "C", "author": "A", "price": "1.00"},
                          headers={"Authorization": f"Bearer {token}"})
    assert_status(resp, 201)
    # the access record is written once the response went out
    wait_for(lambda: any(r.get("AUTH_SUBJECT") == "ops" for r in books.access_records()),
             scaled(5), message="the access record with AUTH_SUBJECT=ops")


def test_without_tokens_writes_are_open_and_the_log_says_so(odaemons):
    books = odaemons.start()
    assert_status(books.api.post("/v1/books", json={"title": "Open", "author": "A",
                                                    "price": "1.00"}), 201)
    assert any("writes are open" in r.get("MESSAGE", "") for r in books.log_records())


# --------------------------------------------------------------------------
# the subject is logged and counted; the token is nowhere


def test_names_logged_and_counted_tokens_nowhere(pair, tokens):
    admin = tokens.header("admin")
    book = pair.books_api.post("/v1/books", json={"title": "L", "author": "A", "price": "2.00"},
                               headers=admin).json()
    bodies = []
    for headers in bad_headers(tokens) + [admin, tokens.header("worker")]:
        bodies.append(pair.books_api.post("/v1/books", json={"title": "L2", "author": "A",
                                                             "price": "2.00"}, headers=headers).text)
        bodies.append(pair.api.create_order(book["id"], 1, key=f"leak-{new_token()}",
                                            headers=headers, status=None).text)
        bodies.append(pair.api.get("/v1/orders", headers=headers).text)

    metrics = {d.name: d.api.get("/metrics").text for d in (pair.books, pair.orders)}
    for daemon in (pair.books, pair.orders):
        wait_for(lambda: any(r.get("AUTH_SUBJECT") == "worker" for r in daemon.access_records()),
                 5, message="an access record of the worker token")
        records = [r for r in daemon.access_records() if r.get("HTTP_METHOD") == "POST"]
        assert {r.get("AUTH_SUBJECT") for r in records if r["HTTP_STATUS"] != "401"} \
            == {"admin", "worker"}, records
        assert all("AUTH_SUBJECT" not in r for r in records if r["HTTP_STATUS"] == "401")
        samples = scrape(daemon)
        assert metric_value(samples, "http_auth_total", subject="admin", result="ok") >= 1
        assert metric_value(samples, "http_auth_total", subject="-", result="missing") >= 1
        assert metric_value(samples, "http_auth_total", subject="-", result="unknown") >= 1
        assert metric_value(samples, "http_auth_total", subject="-", result="malformed") >= 1

    for name, token in tokens.tokens.items():
        for daemon in (pair.books, pair.orders):
            assert token not in daemon.stderr_text() + daemon.stdout_text(), daemon.name
            with open(f"/proc/{daemon.pid}/cmdline", "rb") as f:
                assert token.encode() not in f.read()
        for text in list(metrics.values()) + bodies:
            assert token not in text


# --------------------------------------------------------------------------
# the worker


def write_secret(path, text):
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_worker_creates_orders_with_its_token(workers, redis_server, rc, pair, tokens, tmp_path):
    book = pair.books_api.post("/v1/books", json={"title": "W", "author": "A", "price": "4.00"},
                               headers=tokens.header("admin")).json()
    token_file = write_secret(tmp_path / "orders-api-token", tokens.tokens["worker"] + "\n")
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url(),
                                                 "ORDERS_API_TOKEN_FILE": token_file})
    res = wait_result(rc, add_job(rc, book["id"], 2, key="worker-auth-1"))
    assert res["outcome"] == "created", res
    order = pair.api.get(f"/v1/orders/{res['order_id']}", headers=tokens.header("admin")).json()
    assert order["quantity"] == 2
    # (the record is written as the response leaves: wait for it)
    posts = wait_for(lambda: [r for r in pair.orders.access_records()
                              if r.get("HTTP_METHOD") == "POST" and r.get("HTTP_STATUS") == "201"],
                     scaled(5), message="the worker's POST in the access log")
    assert [r.get("AUTH_SUBJECT") for r in posts] == ["worker"], posts
    assert tokens.tokens["worker"] not in w.stderr_text() + w.stdout_text()

    # a rotated token, re-read on SIGHUP
    fresh = new_token()
    tokens.write(admin=tokens.tokens["admin"], worker=fresh)
    pair.orders.send_signal(signal.SIGHUP)
    pair.orders.wait_for_log(lambda r: "tokens reloaded" in r.get("MESSAGE", ""), timeout=10)
    write_secret(token_file, fresh + "\n")
    w.send_signal(signal.SIGHUP)
    w.wait_for_log(lambda r: "token reloaded" in r.get("MESSAGE", ""), timeout=10)
    res = wait_result(rc, add_job(rc, book["id"], 1, key="worker-auth-2"))
    assert res["outcome"] == "created", res
    assert fresh not in w.stderr_text()


def test_worker_without_a_token_is_refused(workers, redis_server, rc, pair, tokens):
    book = pair.books_api.post("/v1/books", json={"title": "W", "author": "A", "price": "4.00"},
                               headers=tokens.header("admin")).json()
    # no token: Orders refuses, and a 4xx is never retried
    start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    res = wait_result(rc, add_job(rc, book["id"], 1, key="worker-auth-none"))
    assert res["outcome"] == "rejected" and res["http_status"] == "401", res
    assert "UNAUTHORIZED" in res.get("error", ""), res
    assert pair.api.get("/v1/orders", params={"limit": 1},
                        headers=tokens.header("admin")).headers["X-Total-Count"] == "0"


def test_worker_reads_the_credential(workers, redis_server, rc, pair, tokens, tmp_path):
    book = pair.books_api.post("/v1/books", json={"title": "W", "author": "A", "price": "4.00"},
                               headers=tokens.header("admin")).json()
    creds = tmp_path / "worker-credentials"
    creds.mkdir()
    write_secret(creds / "orders-api-token", tokens.tokens["worker"])
    start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url(),
                                             "CREDENTIALS_DIRECTORY": creds})
    res = wait_result(rc, add_job(rc, book["id"], 1, key="worker-auth-cred"))
    assert res["outcome"] == "created", res


def test_worker_with_a_bad_token_file_is_exit_78(workers, redis_server, tmp_path):
    from worker_harness import spawn_worker, worker_env

    bad = write_secret(tmp_path / "token", "two words\n")
    w = spawn_worker(workers, worker_env(redis_server, free_port(),
                                         {"ORDERS_API_TOKEN_FILE": bad}))
    assert w.wait(20) == EX_CONFIG
    assert "ORDERS_API_TOKEN_FILE" in w.stderr_text()
    assert "two words" not in w.stderr_text()


def test_expect_continue_gets_401_before_the_body(pair, tokens):
    """With Expect: 100-continue the refusal goes out before the body is sent,
    and the connection still serves the next request."""
    from harness import read_http_response

    body = b'{"title": "Never", "author": "A", "price": "1.00"}'
    count = pair.books_api.total_count()
    with socket.create_connection(("127.0.0.1", pair.books.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        status, headers, payload = read_http_response(sock)
        assert status == 401, (status, headers, payload)
        assert json.loads(payload)["error"] == "UNAUTHORIZED"
        sock.sendall(b"GET /v1/books?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, payload = read_http_response(sock)
        assert status == 200, (status, headers, payload)
    assert pair.books_api.total_count() == count
