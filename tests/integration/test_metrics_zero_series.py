"""A freshly started daemon's GET /metrics already has every series the
docs/monitoring.md's PromQL, the Grafana dashboards and the alert rules read, at 0
(issue 15: dashboards said "No data" exactly while all was well, because the
5xx series only appeared with the first 5xx):

- for each route and method, http_requests_total with status_class 2xx, 4xx
  and 5xx (a zero series carries its class's generic code: 200, 400, 500)
  and the http_request_duration_seconds histogram;
- the worker's job series for each queue, the job-duration histogram too.

Only the routes' own label values are made up front: no HEAD, no
`unmatched`. The routes come from each daemon's /openapi.json."""

import os
import shutil
import subprocess
from collections import Counter

import pytest
import requests

from harness import assert_status, parse_metrics, scaled
from worker_harness import redis_server, start_worker, workers  # noqa: F401 - fixtures

ZERO_CODES = {"2xx": "200", "4xx": "400", "5xx": "500"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
# Every daemon serves these (bs-service); the worker has no OpenAPI document.
SERVICE_ROUTES = {("/metrics", "GET"), ("/livez", "GET"), ("/openapi.json", "GET")}
WORKER_QUEUES = ("process-order", "send-notification", "create-order")
WORKER_FAILURE_CLASSES = ("4xx", "5xx", "timeout", "other")


def scrape(daemon):
    resp = requests.get(daemon.url("/metrics"), timeout=scaled(5))
    assert_status(resp, 200)
    return resp.text, parse_metrics(resp.text)


def openapi_routes(daemon):
    resp = requests.get(daemon.url("/openapi.json"), timeout=scaled(5))
    assert_status(resp, 200)
    return {(path, method.upper()) for path, item in resp.json()["paths"].items()
            for method in item if method in HTTP_METHODS}


def requests_series(samples, handler, method, status_class):
    return [(labels["code"], value) for name, labels, value in samples
            if name == "http_requests_total" and labels["handler"] == handler
            and labels["method"] == method and labels["status_class"] == status_class]


def assert_route_series(text, samples, routes, touched=(("/health", "GET"),)):
    """Each route has its three classes and its histogram; the routes nobody
    has called yet (all but `touched`) have exactly the zero series."""
    for handler, method in sorted(routes):
        for status_class, code in ZERO_CODES.items():
            series = requests_series(samples, handler, method, status_class)
            assert series, f"no {status_class} series for {method} {handler}:\n{text}"
            codes = [c for c, _ in series]
            assert code in codes, f"{method} {handler} {status_class}: codes {codes}, want {code}"
            if (handler, method) not in touched:
                assert series == [(code, 0.0)], (handler, method, status_class, series)
        buckets = {labels["le"]: value for name, labels, value in samples
                   if name == "http_request_duration_seconds_bucket"
                   and labels["handler"] == handler and labels["method"] == method}
        assert "+Inf" in buckets, f"no latency histogram for {method} {handler}:\n{text}"
        for suffix in ("_sum", "_count"):
            assert any(name == "http_request_duration_seconds" + suffix and labels["handler"] == handler
                       and labels["method"] == method for name, labels, _ in samples), (handler, suffix)
        if (handler, method) not in touched:
            assert set(buckets.values()) == {0.0}, (handler, method, buckets)

    # bounded: only the routes' own label values, each series once
    made = {(labels["handler"], labels["method"]) for name, labels, _ in samples
            if name == "http_requests_total"}
    assert routes <= made
    assert not [m for m in made if m[0] == "unmatched" or m[1] == "HEAD"], made
    keys = Counter((name, tuple(sorted(labels.items()))) for name, labels, _ in samples)
    assert [k for k, n in keys.items() if n > 1] == [], "a series rendered twice"


def assert_promtool_accepts(text):
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(promtool):
        pytest.fail("promtool not installed (Debian package 'prometheus')")
    proc = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True,
                          timeout=30)
    assert proc.returncode == 0, (proc.stdout.decode(), proc.stderr.decode())


def test_books_exports_every_route_at_zero(fresh_daemon):
    routes = openapi_routes(fresh_daemon) | SERVICE_ROUTES
    assert ("/v1/books/{id}", "DELETE") in routes, routes
    text, samples = scrape(fresh_daemon)
    assert_route_series(text, samples, routes, touched={("/health", "GET"), ("/openapi.json", "GET")})
    assert_promtool_accepts(text)


def test_books_with_several_loops_sums_the_zero_series(daemons):
    """Each loop's server makes the zero series in its own shard; the scrape
    renders each once, summed."""
    d = daemons.start(env={"BOOKS_THREADS": "2"})
    routes = openapi_routes(d) | SERVICE_ROUTES
    text, samples = scrape(d)
    assert_route_series(text, samples, routes, touched={("/health", "GET"), ("/openapi.json", "GET")})


def test_orders_exports_every_route_at_zero(fresh_pair):
    orders = fresh_pair.orders
    routes = openapi_routes(orders) | SERVICE_ROUTES
    assert ("/v1/orders", "POST") in routes, routes
    text, samples = scrape(orders)
    assert_route_series(text, samples, routes, touched={("/health", "GET"), ("/openapi.json", "GET")})
    assert_promtool_accepts(text)


def test_a_first_5xx_counts_from_zero(fresh_pair):
    """The seed's 5xx query on a service that never failed is 0; its first
    5xx then shows as an increase from a series that was already there."""
    orders = fresh_pair.orders
    _, before = scrape(orders)
    assert requests_series(before, "/v1/orders", "POST", "5xx") == [("500", 0.0)]
    fresh_pair.books.stop()
    resp = requests.post(orders.url("/v1/orders"), json={"book_id": 1, "quantity": 1},
                         timeout=scaled(10))
    assert 500 <= resp.status_code < 600, resp.text
    _, after = scrape(orders)
    series = dict(requests_series(after, "/v1/orders", "POST", "5xx"))
    assert sum(series.values()) == 1, series
    assert series[str(resp.status_code)] == 1, series


def test_worker_exports_every_route_and_queue_at_zero(workers, redis_server):  # noqa: F811
    worker = start_worker(workers, redis_server)
    text, samples = scrape(worker)
    assert_route_series(text, samples, SERVICE_ROUTES | {("/health", "GET")})

    def value(name, **labels):
        found = [v for n, l, v in samples if n == name and l == labels]
        assert found, f"{name}{labels} missing:\n{text}"
        return found[0]

    for queue in WORKER_QUEUES:
        for name in ("worker_jobs_completed_total", "worker_jobs_skipped_total",
                     "worker_jobs_dead_lettered_total", "worker_jobs_claimed_total",
                     "worker_jobs_in_flight", "worker_job_duration_seconds_count"):
            assert value(name, queue=queue) == 0, (name, queue)
        assert value("worker_job_duration_seconds_bucket", queue=queue, le="+Inf") == 0
        for failure_class in WORKER_FAILURE_CLASSES:
            assert value("worker_jobs_failed_total", queue=queue, **{"class": failure_class}) == 0
    assert_promtool_accepts(text)
