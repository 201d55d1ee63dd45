"""Debian's Prometheus against the real stack: PostgreSQL, Redis, Books,
Orders and the worker, with monitoring/prometheus.yml's jobs and relabelling
and monitoring/rules/ loaded, scraping every second.

First, on the freshly started, healthy stack (nothing but Prometheus'
scrapes and the health checks that waited for the daemons): every PromQL
query of docs/monitoring.md and every dashboard panel's
expression already returns a number, so no panel says "No data" while all
is well (the error queries give 0, not nothing).

Then the module's stack serves real traffic: books and orders (some
rejected with 4xx), orders processed by the worker, order-creation jobs (one
rejected), and a Books outage during which Orders answers 503 and its circuit
opens. Then: every job is up, every rule evaluates, every PromQL query of
docs/monitoring.md and every dashboard panel's expression returns
data, and the down alerts go pending when a service is stopped.

The fresh-stack tests come first in this file and must run before any test
that uses `stack` (which serves the traffic): they check that it has not."""

import math
import re
import time
import uuid

import pytest
import requests

from dashboards import dashboard_exprs
from harness import REPO_ROOT, DaemonManager, PgCluster, ServicePair, daemon_binary, scaled, wait_for
from prometheus_server import MONITORING, PrometheusServer
from redis_server import RedisServer
from worker_harness import run_enqueue, start_worker

SCRAPES = 3  # seconds: a few scrapes at 1 s


def documented_promql():
    """Every query in the ```promql blocks of docs/monitoring.md (the
    README's Monitoring section until it moved there): comment lines
    dropped, a query's continuation lines joined."""
    text = (REPO_ROOT / "docs" / "monitoring.md").read_text()
    section = re.search(r"\A# Monitoring\n(.*)", text, re.S)
    assert section, "docs/monitoring.md does not begin with '# Monitoring'"
    queries = []
    for block in re.findall(r"```promql\n(.*?)```", section.group(1), re.S):
        current = []
        for line in block.splitlines() + [""]:
            line = line.strip()
            if line and not line.startswith("#"):
                current.append(line)
            elif current:
                queries.append(" ".join(current))
                current = []
    assert len(queries) >= 15, queries
    return queries


def is_outage_query(q):
    """Queries that select only what is down (`up{…} == 0`)."""
    return re.search(r"==\s*0\s*$", q) is not None


def has_numbers(samples):
    """At least one sample with a number (not NaN: a ratio over nothing)."""
    return any(not math.isnan(float(s["value"][1])) for s in samples)


def wait_order_status(api, order_id, status, timeout):
    wait_for(lambda: api.get(f"/v1/orders/{order_id}").json().get("status") == status, timeout,
             interval=0.2, message=f"order {order_id} {status}")


def serve_traffic(stack):
    pair, redis = stack.pair, stack.redis
    books, orders = pair.books_api, pair.api

    ids = [books.create_book(title=f"Monitored {i}", author="P. Romo", price=f"1{i}.50")["id"]
           for i in range(3)]
    assert books.get("/v1/books").status_code == 200
    assert books.get(f"/v1/books/{ids[0]}").status_code == 200
    assert books.post("/v1/books", data="{not json",
                      headers={"Content-Type": "application/json"}).status_code == 400
    assert books.get("/v1/books/999999").status_code == 404

    created = [orders.order(ids[i % 3], i + 1)["id"] for i in range(5)]
    assert orders.create_order(ids[0], 0, status=None).status_code == 400
    assert orders.create_order(999999, 1, status=None).status_code == 404
    assert orders.get("/v1/orders/999999").status_code == 404
    assert orders.get("/v1/orders").status_code == 200
    for o in created:
        wait_order_status(orders, o, "completed", scaled(30))

    # order-creation jobs: one created, one rejected by Orders (4xx)
    rc, out, err = run_enqueue(redis, "--book-id", ids[1], "--quantity", 2, "--wait", 30)
    assert rc == 0, (out, err)
    rc, out, err = run_enqueue(redis, "--book-id", 999999, "--quantity", 2, "--wait", 30)
    assert rc == 1, (out, err)

    # Books outage: Orders answers 503, its circuit opens
    pair.books.stop()
    stack.prometheus.wait_scraped("books", 0, scaled(30))

    def circuit_open():
        resp = orders.create_order(ids[0], 1, status=None)
        assert resp.status_code in (502, 503, 504), resp.text
        return stack.prometheus.query("books_circuit_state == 1")

    wait_for(circuit_open, scaled(30), interval=0.3, message="the circuit open in Prometheus")
    stack.prometheus.wait_alert("BooksServiceDown", scaled(30))
    stack.prometheus.wait_alert("BooksCircuitOpen", scaled(30))

    pair.restart_books()
    stack.prometheus.wait_scraped("books", 1, scaled(30))
    wait_for(lambda: orders.create_order(ids[2], 1, status=None).status_code == 201, scaled(30),
             interval=0.5, message="orders accepted again after the outage")
    time.sleep(SCRAPES)  # the last counts scraped


class Stack:
    traffic_served = False


def wait_scrapes(prom, jobs, n, timeout):
    """Wait until Prometheus has scraped every target of each job n times
    (a rate() needs two samples of a series)."""
    def done():
        for job in jobs:
            samples = prom.query(f'count_over_time(up{{job="{job}"}}[10m])')
            if not samples or any(float(s["value"][1]) < n for s in samples):
                return False
        return True
    wait_for(done, timeout, interval=0.5, message=f"{n} scrapes of {sorted(jobs)}")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The stack just started and healthy, before any traffic."""
    daemon_binary("books"), daemon_binary("orders")  # built, or a clear error
    s = Stack()
    with PgCluster("monitoring") as pg, RedisServer() as redis, \
            DaemonManager(pg, tmp_path_factory.mktemp("monitoring")) as manager:
        s.redis = redis
        s.pair = ServicePair(manager, orders_env={
            **redis.env("orders"), "BOOKS_CIRCUIT_FAILURE_THRESHOLD": "3",
            "BOOKS_CIRCUIT_COOLDOWN_MS": "3000", "BOOKS_TIMEOUT_MS": "1000"})
        s.worker = start_worker(manager, redis, env={"ORDERS_API_URL": s.pair.orders.url()})
        targets = {"books": [f"127.0.0.1:{s.pair.books.port}"],
                   "orders": [f"127.0.0.1:{s.pair.orders.port}"],
                   "worker": [f"127.0.0.1:{s.worker.port}"]}
        with PrometheusServer(targets) as prom:
            s.prometheus = prom
            for job in targets:
                prom.wait_scraped(job, 1, scaled(30))
            wait_scrapes(prom, targets, SCRAPES, scaled(30))
            yield s


@pytest.fixture(scope="module")
def stack(fresh):
    """The same stack once it has served the module's traffic."""
    if not fresh.traffic_served:
        fresh.traffic_served = True
        serve_traffic(fresh)
    return fresh


def fresh_queries():
    """(where, query): docs/monitoring.md's queries (but the outage ones) and every
    dashboard panel's expression, $__rate_interval as Grafana makes it of a
    15 s scrape interval (1m)."""
    return ([(f"docs/monitoring.md: {q}", q) for q in documented_promql() if not is_outage_query(q)]
            + [(f"{d}: {panel} [{ref}]", e) for d, panel, ref, e in dashboard_exprs(MONITORING, "1m")])


# Families that only count what users cause: Orders' calls to Books (an
# order) and the worker's jobs. Until the first one, a quantile or a share of
# them is 0/0: NaN, which Grafana shows as the value of an existing series,
# not as "No data". Every other query has a number: the scrapes themselves
# are requests.
IDLE_FAMILIES = {"books_request": 'sum(books_requests_total{job="orders"})',
                 "worker_job": 'sum(worker_job_duration_seconds_count{job="worker"})'}


def only_idle_families(prom, query):
    """The query reads only IDLE_FAMILIES (no http_, db_, process_ series),
    and nothing has been counted in them yet."""
    used = [events for prefix, events in IDLE_FAMILIES.items() if prefix in query]
    if not used or re.search(r"\b(http|db|process|redis|orders)_", query):
        return False
    return all([float(s["value"][1]) for s in prom.query(events)] == [0.0] for events in used)


@pytest.mark.parametrize("where,query", fresh_queries())
def test_query_returns_a_number_on_a_fresh_stack(fresh, where, query):
    assert not fresh.traffic_served, "must run before the tests that serve traffic"
    prom = fresh.prometheus
    samples = prom.query(query)
    assert samples, f"No data on a fresh, healthy stack for {where}\n  {query}"
    assert has_numbers(samples) or only_idle_families(prom, query), (
        f"only NaN on a fresh, healthy stack for {where}\n  {query}\n  {samples}")


def test_error_rates_are_zero_on_a_fresh_stack(fresh):
    """The seed's error queries: 0 when all is well, not nothing."""
    assert not fresh.traffic_served, "must run before the tests that serve traffic"
    prom = fresh.prometheus
    for job in ("books", "orders", "worker"):
        for query in (f'sum(rate(http_requests_total{{job="{job}",status_class="5xx"}}[5m]))',
                      f'sum(rate(http_requests_total{{job="{job}",status_class="5xx"}}[5m])) '
                      f'/ sum(rate(http_requests_total{{job="{job}"}}[5m])) * 100',
                      f'sum(rate(http_requests_total{{job="{job}",status_class="4xx"}}[5m])) '
                      f'/ sum(rate(http_requests_total{{job="{job}"}}[5m])) * 100'):
            values = [float(s["value"][1]) for s in prom.query(query)]
            assert values == [0.0], f"{query} -> {values}"


def test_all_three_jobs_up(stack):
    samples = stack.prometheus.query('up{job=~"books|orders|worker|prometheus"}')
    up = {s["metric"]["job"]: float(s["value"][1]) for s in samples}
    assert up == {"books": 1, "orders": 1, "worker": 1, "prometheus": 1}, up


def test_relabelling_adds_service_and_host(stack):
    for target in stack.prometheus.targets():
        labels = target["labels"]
        if labels["job"] == "prometheus":
            continue
        assert labels["service"] == labels["job"], labels
        assert labels["host"] == "127.0.0.1", labels
        assert labels["instance"].startswith("127.0.0.1:"), labels


def test_latency_exemplars_reach_prometheus(stack):
    """Prometheus scrapes OpenMetrics from the daemons and keeps the request's
    trace id as the exemplar of its latency bucket (query_exemplars)."""
    trace_id = uuid.uuid4().hex
    for _ in range(3):
        resp = requests.get(stack.pair.books.url("/v1/books?limit=1"), timeout=10,
                            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        assert resp.status_code == 200

    def found():
        now = time.time()
        resp = requests.get(f"{stack.prometheus.url}/api/v1/query_exemplars", timeout=10, params={
            "query": 'http_request_duration_seconds_bucket{job="books",handler="/v1/books"}',
            "start": now - 600, "end": now + 60})
        resp.raise_for_status()
        return [e for series in resp.json()["data"] for e in series["exemplars"]
                if e["labels"].get("trace_id") == trace_id]
    exemplars = wait_for(found, scaled(30), interval=0.5, message=f"the exemplar {trace_id}")
    assert 0 < float(exemplars[0]["value"]) < 60


def query_exemplars(prom, selector, trace_id):
    now = time.time()
    resp = requests.get(f"{prom.url}/api/v1/query_exemplars", timeout=10, params={
        "query": selector, "start": now - 600, "end": now + 60})
    resp.raise_for_status()
    return [e for series in resp.json()["data"] for e in series["exemplars"]
            if e["labels"].get("trace_id") == trace_id]


def test_order_latency_exemplars_reach_prometheus(stack):
    """One order's trace id is the exemplar of each latency histogram it went
    through: Orders' request, Orders' call to Books, the worker's job."""
    trace_id = uuid.uuid4().hex
    book = stack.pair.books_api.create_book(title="Exemplary", author="E. Xemplar", price="2.00")
    resp = stack.pair.api.post("/v1/orders", json={"book_id": book["id"], "quantity": 1},
                               headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert resp.status_code == 201, resp.text
    wait_order_status(stack.pair.api, resp.json()["id"], "completed", scaled(30))
    for selector in ('http_request_duration_seconds_bucket{job="orders",handler="/v1/orders"}',
                     'books_request_duration_seconds_bucket{job="orders"}',
                     'worker_job_duration_seconds_bucket{job="worker",queue="process-order"}'):
        exemplars = wait_for(lambda: query_exemplars(stack.prometheus, selector, trace_id),
                             scaled(30), interval=0.5, message=f"the exemplar {trace_id} of {selector}")
        assert 0 < float(exemplars[0]["value"]) < 60, (selector, exemplars)


def test_every_alert_rule_loads_and_evaluates(stack):
    import yaml
    shipped = {r["alert"] for g in yaml.safe_load((MONITORING / "rules" / "alerts.yml").read_text())["groups"]
               for r in g["rules"] if "alert" in r}
    loaded = {}
    for group in stack.prometheus.rules():
        for rule in group["rules"]:
            loaded[rule["name"]] = rule
    assert shipped <= set(loaded), shipped - set(loaded)
    bad = {name: r.get("lastError") for name, r in loaded.items() if r["health"] != "ok"}
    assert not bad, bad


@pytest.mark.parametrize("query", [q for q in documented_promql() if not is_outage_query(q)])
def test_documented_query_returns_data(stack, query):
    assert has_numbers(stack.prometheus.query(query)), f"no data for docs/monitoring.md's\n  {query}"


@pytest.mark.parametrize("where,expr", [(f"{d}: {panel} [{ref}]", e)
                                        for d, panel, ref, e in dashboard_exprs(MONITORING, "5m")])
def test_dashboard_panel_returns_data(stack, where, expr):
    """$__rate_interval as 5m: the whole module's traffic is in the window."""
    assert has_numbers(stack.prometheus.query(expr)), f"no data for {where}\n  {expr}"


def test_the_books_outage_shows(stack):
    prom = stack.prometheus
    assert prom.query('sum(increase(http_requests_total{job="orders",status_class="5xx"}[5m])) > 0')
    assert prom.query("increase(books_circuit_opens_total[5m]) > 0")
    assert prom.query('increase(books_requests_total{result="rejected"}[5m]) > 0')
    assert prom.query('max_over_time(up{job="books"}[5m]) == 1 and min_over_time(up{job="books"}[5m]) == 0')
    assert prom.query("books_circuit_state == 0"), "the circuit closed again"
    # Prometheus's own record of the alerts it raised meanwhile
    raised = prom.query('max by (alertname) (max_over_time(ALERTS{alertname=~"Books.*"}[10m]))')
    assert {s["metric"]["alertname"] for s in raised} >= {"BooksServiceDown", "BooksCircuitOpen"}, raised


def test_worker_jobs_show(stack):
    prom = stack.prometheus
    assert prom.query('increase(worker_jobs_completed_total{queue="process-order"}[5m]) >= 5')
    assert prom.query('increase(worker_jobs_completed_total{queue="send-notification"}[5m]) >= 5')
    assert prom.query('increase(worker_jobs_failed_total{queue="create-order",class="4xx"}[5m]) > 0')


def test_redis_down_alert_goes_pending(stack):
    stack.redis.stop()
    try:
        stack.prometheus.wait_alert("RedisUnreachable", scaled(30))
    finally:
        stack.redis.start()
    stack.worker.wait_healthy(scaled(30))


def test_the_seeds_p95_without_le_returns_nothing(stack):
    """docs/monitoring.md says why it is not among the queries: `sum` drops `le`."""
    broken = 'histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket{job="orders"}[5m])))'
    assert stack.prometheus.query(broken) == []
    fixed = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="orders"}[5m])))'
    assert stack.prometheus.query(fixed)


# last: stops the services one by one
def test_down_alerts_go_pending_when_services_stop(stack):
    prom = stack.prometheus
    stack.worker.stop()
    prom.wait_scraped("worker", 0, scaled(30))
    prom.wait_alert("WorkerServiceDown", scaled(30))

    stack.pair.orders.stop()
    prom.wait_scraped("orders", 0, scaled(30))
    prom.wait_alert("OrdersServiceDown", scaled(30))
    prom.wait_alert("PrometheusTargetDown", scaled(30))
    for query in filter(is_outage_query, documented_promql()):
        assert prom.query(query), f"no data for docs/monitoring.md's\n  {query}\nwith Orders stopped"

    stack.pair.books.stop()
    prom.wait_scraped("books", 0, scaled(30))
    prom.wait_alert("BooksServiceDown", scaled(30))

