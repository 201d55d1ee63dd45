"""GET /metrics: Prometheus text exposition that promtool accepts, with the
request counters labelled by route template."""

import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from harness import assert_status, describe, metric_value, parse_metrics, scrape_settled


def scrape(daemon):
    resp = requests.get(daemon.url("/metrics"), timeout=5)
    assert_status(resp, 200)
    return resp


value_of = metric_value


def test_metrics_content_type(shared_daemon):
    resp = scrape(shared_daemon)
    ct = resp.headers.get("Content-Type", "")
    assert ct.startswith("text/plain"), describe(resp)
    assert "version=0.0.4" in ct.replace(" ", ""), describe(resp)


def test_request_counters_by_route_template(shared_daemon):
    api = shared_daemon.api
    book = api.create_book(title="metered")
    before = parse_metrics(scrape_settled(shared_daemon))

    assert_status(api.get(f"/v1/books/{book['id']}"), 200)
    assert_status(api.get(f"/v1/books/{book['id']}"), 200)
    assert_status(api.get("/v1/books/987654321"), 404)
    assert_status(api.get("/v1/books/abc"), 400)
    assert_status(api.post("/v1/books", json={"title": "m", "author": "a", "price": "1"}), 201)

    text = scrape_settled(shared_daemon)
    after = parse_metrics(text)

    def delta(**labels):
        return value_of(after, "http_requests_total", **labels) - value_of(before, "http_requests_total", **labels)

    h = "/v1/books/{id}"
    assert delta(handler=h, method="GET", code="200", status_class="2xx") == 2, text
    assert delta(handler=h, method="GET", code="404", status_class="4xx") == 1, text
    assert delta(handler=h, method="GET", code="400", status_class="4xx") == 1, text
    assert delta(handler="/v1/books", method="POST", code="201", status_class="2xx") == 1, text

    # the raw id never becomes a label value (bounded cardinality)
    assert f'handler="/v1/books/{book["id"]}"' not in text
    assert "987654321" not in text

    # every http_requests_total sample has exactly the documented labels
    for name, labels, _ in after:
        if name == "http_requests_total":
            assert set(labels) == {"handler", "method", "status_class", "code"}, labels
            assert re.fullmatch(r"[1-5]xx", labels["status_class"]), labels
            assert labels["status_class"][0] == labels["code"][0], labels

    # histogram: buckets, _sum and _count for the route template
    buckets = [(l, v) for n, l, v in after if n == "http_request_duration_seconds_bucket"
               and l.get("handler") == h and l.get("method") == "GET"]
    assert buckets, text
    inf = [v for l, v in buckets if l.get("le") == "+Inf"]
    assert inf and inf[0] >= 4, buckets
    count = value_of(after, "http_request_duration_seconds_count", handler=h, method="GET")
    assert count == inf[0], (count, inf)
    les = sorted(float(l["le"]) for l, _ in buckets if l["le"] != "+Inf")
    cumulative = [v for l, v in sorted(((l, v) for l, v in buckets if l["le"] != "+Inf"),
                                       key=lambda lv: float(lv[0]["le"]))]
    assert cumulative == sorted(cumulative), "histogram buckets must be cumulative"
    assert les, buckets
    assert any(n == "http_request_duration_seconds_sum" and l.get("handler") == h for n, l, _ in after), text


def test_unknown_routes_do_not_create_label_values(shared_daemon):
    for i in range(5):
        requests.get(shared_daemon.url(f"/random-path-{i}-zzq"), timeout=5)
    text = scrape(shared_daemon).text
    assert "random-path" not in text, "unknown paths must not become label values"


def test_unknown_methods_do_not_create_label_values(shared_daemon):
    """Any token is a valid HTTP method; a client must not be able to grow the
    metrics by inventing them."""
    before = value_of(parse_metrics(scrape_settled(shared_daemon)), "http_requests_total",
                      handler="/v1/books", method="other")
    for i in range(5):
        resp = requests.request(f"ZZQMETHOD{i}", shared_daemon.url("/v1/books"), timeout=5)
        assert_status(resp, 405)
    samples = parse_metrics(scrape_settled(shared_daemon))
    assert not [l for n, l, v in samples if "ZZQMETHOD" in l.get("method", "")]
    after = value_of(samples, "http_requests_total", handler="/v1/books", method="other")
    assert after - before == 5


def test_process_and_pool_metrics(shared_daemon):
    samples = parse_metrics(scrape(shared_daemon).text)
    names = {n for n, _, _ in samples}
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds", "db_pool_connections"):
        assert name in names, f"{name} missing; have {sorted(names)}"
    assert value_of(samples, "process_resident_memory_bytes") > 1024 * 1024
    assert value_of(samples, "process_open_fds") >= 3
    start = value_of(samples, "process_start_time_seconds")
    assert time.time() - 3600 < start <= time.time() + 1, start
    pool = [(l, v) for n, l, v in samples if n == "db_pool_connections"]
    assert all("state" in l for l, _ in pool), pool
    assert sum(v for _, v in pool) >= 1, pool


def test_promtool_check_metrics(shared_daemon):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(promtool):
        pytest.fail("promtool not installed (Debian package 'prometheus')")
    # make sure there are samples of every kind first
    api = shared_daemon.api
    api.get("/v1/books")
    api.get("/v1/books/987654321")
    api.get("/nope")
    body = scrape(shared_daemon).content
    proc = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert proc.returncode == 0, (
        f"promtool check metrics exited {proc.returncode}\nstdout: {proc.stdout.decode()}\n"
        f"stderr: {proc.stderr.decode()}"
    )


def test_metric_families_have_help_and_type(shared_daemon):
    text = scrape(shared_daemon).text
    typed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    assert typed.get("http_requests_total") == "counter", typed
    assert typed.get("http_request_duration_seconds") == "histogram", typed
    assert typed.get("process_cpu_seconds_total") == "counter", typed
    assert typed.get("db_pool_connections") == "gauge", typed
    assert set(typed) <= helped, f"families without HELP: {set(typed) - helped}"


OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def openmetrics(daemon):
    resp = requests.get(daemon.url("/metrics"), timeout=10,
                        headers={"Accept": "application/openmetrics-text;version=1.0.0,"
                                           "text/plain;version=0.0.4;q=0.5"})
    assert_status(resp, 200)
    assert resp.headers["Content-Type"] == OPENMETRICS, describe(resp)
    assert resp.text.endswith("# EOF\n")
    return resp.text


def test_openmetrics_with_exemplars(fresh_pair):
    """A scraper that asks for OpenMetrics (Prometheus does) gets it, valid to
    the prometheus_client parser, with the request's trace id as the exemplar
    of its latency bucket; the classic format has no exemplars."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    book = fresh_pair.books_api.create_book(title="exemplar")
    resp = requests.get(fresh_pair.books.url(f"/v1/books/{book['id']}"), timeout=10,
                        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert_status(resp, 200)
    text = openmetrics(fresh_pair.books)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["http_requests"].type == "counter"
    exemplars = [s.exemplar for s in families["http_request_duration_seconds"].samples
                 if s.name.endswith("_bucket") and s.labels.get("handler") == "/v1/books/{id}"
                 and s.exemplar is not None]
    assert [e.labels for e in exemplars] == [{"trace_id": trace_id}], exemplars
    assert 0 < exemplars[0].value < 10 and exemplars[0].timestamp is not None

    # Orders: its request and its call to Books (a child span: same trace id)
    order_trace = "0af7651916cd43dd8448eb211c80319c"
    resp = fresh_pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                               headers={"traceparent": f"00-{order_trace}-b7ad6b7169203331-01"})
    assert_status(resp, 201)
    families = {f.name: f for f in text_string_to_metric_families(openmetrics(fresh_pair.orders))}
    for family, labels in (("http_request_duration_seconds", {"handler": "/v1/orders"}),
                           ("books_request_duration_seconds", {})):
        exemplars = [s.exemplar for s in families[family].samples
                     if s.name.endswith("_bucket") and s.exemplar is not None
                     and labels.items() <= s.labels.items()]
        assert [e.labels for e in exemplars] == [{"trace_id": order_trace}], (family, exemplars)
    # the classic format carries no exemplar
    plain = requests.get(fresh_pair.books.url("/metrics"), timeout=10).text
    assert "# {" not in plain and "# EOF" not in plain
