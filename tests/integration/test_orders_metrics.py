"""GET /metrics of bookstore-orders: the seed's PromQL labels on the HTTP
metrics, the Books client and circuit metrics, the order counters, and a
document promtool accepts."""

import os
import re
import shutil
import subprocess

import pytest
import requests

from harness import assert_status, describe, metric_value, parse_metrics, scaled, scrape_settled

BOOKS_RESULTS = {"success", "not_found", "gone", "client_error", "server_error", "timeout",
                 "connection_error", "invalid_response", "rejected", "shed"}


def scrape_text(daemon):
    resp = requests.get(daemon.url("/metrics"), timeout=scaled(5))
    assert_status(resp, 200)
    return resp


@pytest.fixture(scope="module")
def book(shared_pair_service):
    return shared_pair_service.current().books_api.create_book(title="Metered", price="4.00")


def test_metrics_content_type(shared_pair):
    resp = scrape_text(shared_pair.orders)
    ct = resp.headers.get("Content-Type", "")
    assert ct.startswith("text/plain"), describe(resp)
    assert "version=0.0.4" in ct.replace(" ", ""), describe(resp)


def test_metrics_after_traffic(shared_pair, book):
    api, orders = shared_pair.api, shared_pair.orders
    gone = shared_pair.books_api.create_book(title="Gone")
    assert_status(shared_pair.books_api.delete(f"/v1/books/{gone['id']}"), 204)
    assert_status(api.get("/health"), 200)  # (its Books probe stays out of the counts below)
    before = parse_metrics(scrape_settled(orders))

    created = api.order(book["id"], 2)
    api.order(book["id"], 3, key="metrics-key")
    assert_status(api.create_order(book["id"], 3, key="metrics-key", status=None), 201)  # replay
    assert_status(api.create_order(book["id"], 4, key="metrics-key", status=None), 409)  # conflict
    assert_status(api.create_order(987654321, 1, status=None), 404)
    assert_status(api.create_order(gone["id"], 1, status=None), 409)
    assert_status(api.create_order(book["id"], 0, status=None), 400)
    assert_status(api.get(f"/v1/orders/{created['id']}"), 200)
    assert_status(api.get(f"/v1/orders/{created['id']}"), 200)
    assert_status(api.get("/v1/orders/987654321"), 404)
    assert_status(api.get("/v1/orders/abc"), 400)
    assert_status(api.get("/v1/orders"), 200)

    text = scrape_settled(orders)
    after = parse_metrics(text)

    def d(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    # http_requests_total{handler,method,status_class,code}, handler = route template
    post, one = "/v1/orders", "/v1/orders/{id}"
    assert d("http_requests_total", handler=post, method="POST", status_class="2xx", code="201") == 3, text
    assert d("http_requests_total", handler=post, method="POST", status_class="4xx", code="409") == 2, text
    assert d("http_requests_total", handler=post, method="POST", status_class="4xx", code="404") == 1, text
    assert d("http_requests_total", handler=post, method="POST", status_class="4xx", code="400") == 1, text
    assert d("http_requests_total", handler=post, method="GET", status_class="2xx", code="200") == 1, text
    assert d("http_requests_total", handler=one, method="GET", status_class="2xx", code="200") == 2, text
    assert d("http_requests_total", handler=one, method="GET", status_class="4xx", code="404") == 1, text
    assert d("http_requests_total", handler=one, method="GET", status_class="4xx", code="400") == 1, text
    assert metric_value(after, "http_requests_total", handler="/health", method="GET", status_class="2xx",
                        code="200") >= 1, text
    for name, labels, _ in after:
        if name == "http_requests_total":
            assert set(labels) == {"handler", "method", "status_class", "code"}, labels
            assert re.fullmatch(r"[1-5]xx", labels["status_class"]) and labels["status_class"][0] == labels["code"][0]
    assert f'"/v1/orders/{created["id"]}"' not in text and "987654321" not in text, "raw ids as label values"

    # http_request_duration_seconds histogram by handler
    buckets = [(l, v) for n, l, v in after if n == "http_request_duration_seconds_bucket"
               and l.get("handler") == post and l.get("method") == "POST"]
    assert buckets and any(l.get("le") == "+Inf" for l, _ in buckets), text
    finite = sorted(((float(l["le"]), v) for l, v in buckets if l["le"] != "+Inf"))
    assert [v for _, v in finite] == sorted(v for _, v in finite), "buckets must be cumulative"
    inf = [v for l, v in buckets if l["le"] == "+Inf"][0]
    assert metric_value(after, "http_request_duration_seconds_count", handler=post, method="POST") == inf

    # the Books client: two orders created, one not_found, one gone; the replay and the 400 never
    # call Books (the contract does not say whether a conflicting key is checked before or after
    # fetching the book: one more success is allowed)
    calls = d("books_requests_total", result="success")
    assert calls in (2, 3), text
    assert d("books_requests_total", result="not_found") == 1, text
    assert d("books_requests_total", result="gone") == 1, text
    for name, labels, _ in after:
        if name == "books_requests_total":
            assert set(labels) == {"result"} and labels["result"] in BOOKS_RESULTS, labels
    assert d("books_request_duration_seconds_count") == calls + 2, text
    for name, labels, _ in after:
        if name.startswith("books_request_duration_seconds"):
            assert set(labels) <= {"le"}, (name, labels)
    assert metric_value(after, "books_circuit_state") == 0
    assert [n for n, _, _ in after if n == "books_circuit_state"], "books_circuit_state missing"
    assert [n for n, _, _ in after if n == "books_circuit_opens_total"], "books_circuit_opens_total missing"
    assert metric_value(after, "books_circuit_opens_total") == 0

    # order counters
    assert d("orders_created_total") == 2, text
    assert d("orders_idempotent_replays_total") == 1, text
    assert d("orders_idempotency_conflicts_total") == 1, text

    typed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    for name, kind in [("http_requests_total", "counter"), ("http_request_duration_seconds", "histogram"),
                       ("books_requests_total", "counter"), ("books_request_duration_seconds", "histogram"),
                       ("books_circuit_state", "gauge"), ("books_circuit_opens_total", "counter"),
                       ("orders_created_total", "counter"), ("orders_idempotent_replays_total", "counter"),
                       ("orders_idempotency_conflicts_total", "counter"), ("db_pool_connections", "gauge"),
                       ("process_cpu_seconds_total", "counter")]:
        assert typed.get(name) == kind, f"# TYPE {name} is {typed.get(name)!r}, expected {kind}"
    assert set(typed) <= helped, f"families without HELP: {set(typed) - helped}"
    names = {n for n, _, _ in after}
    assert any(n.startswith("db_") and n != "db_pool_connections" for n in names), sorted(names)


def test_unknown_routes_do_not_create_label_values(shared_pair):
    for i in range(3):
        requests.get(shared_pair.orders.url(f"/random-path-{i}-zzq"), timeout=scaled(5))
    assert "random-path" not in scrape_text(shared_pair.orders).text


def test_promtool_check_metrics(shared_pair, book):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(promtool):
        pytest.fail("promtool not installed (Debian package 'prometheus')")
    api = shared_pair.api
    api.order(book["id"], 1)
    api.create_order(987654321, 1, status=None)
    api.get("/v1/orders/987654321")
    api.get("/nope")
    body = scrape_text(shared_pair.orders).content
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0, (
        f"promtool check metrics exited {proc.returncode}\nstdout: {proc.stdout.decode()}\n"
        f"stderr: {proc.stderr.decode()}")
