"""The database pool in libpq's pipeline mode (shared/bs-db.c).

First the pool alone: tests/db/db-pipeline-check.c runs one scenario per
database (reads batched into shared round trips, pipeline_depth 1, a failed
query in a batch, writes each in a transaction of their own, connections
killed under queries in flight, a query past its deadline). Then Books as a
black box: concurrent reads on one connection share round trips, and reads
survive their connection being killed under them."""

import collections
import concurrent.futures
import os
import subprocess
import threading
import time

import pytest
import requests

from harness import (assert_json_content_type, build_dir, clean_pg_env, daemon_wrapper, describe,
                     metric_value, scaled, scrape, time_scale, wait_for)

SCENARIOS = ["many", "depth-one", "abort", "writes", "lost", "lost-write", "timeout"]


def check_binary():
    """build/tests/db-pipeline-check; missing fails the test, never skips it."""
    path = build_dir() / "tests" / "db-pipeline-check"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"pipeline check binary not found or not executable: {path}\n"
                    f"build it first (ninja -C {build_dir()}) or set BOOKSTORE_BUILD_DIR",
                    pytrace=False)
    return path


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pool_pipeline_scenario(pg, scenario):
    binary = check_binary()
    db = pg.new_db()
    # its own bound on the whole run, within the suite's hard per-test bound
    deadline = min(scaled(30), 120)
    env = clean_pg_env()
    env.update({
        "BS_TEST_DSN": pg.dsn_uri(db),
        "BS_TEST_TIMEOUT_S": str(deadline),
        "BS_TEST_TIME_SCALE": str(time_scale()),
        "G_DEBUG": "fatal-criticals",
        "G_SLICE": "always-malloc",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    })
    argv = [*daemon_wrapper(), str(binary), scenario]
    try:
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=deadline + 20)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)} still running after {deadline + 20}s"
                    f"\n--- stdout\n{exc.stdout}\n--- stderr\n{exc.stderr}", pytrace=False)
    assert proc.returncode == 0, (f"{' '.join(argv)}: exit status {proc.returncode}"
                                  f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")


# --------------------------------------------------------------------------
# Books as a black box: one event loop, one database connection


BOOKS_ENV = {"BOOKS_DB_POOL_SIZE": "1", "BOOKS_THREADS": "1"}
CLIENTS = 64
N_BOOKS = 20


def create_books(daemon):
    return [daemon.api.create_book(title=f"pipelined {i}", author=f"Author {i}", price=f"{i + 1}.50")
            for i in range(N_BOOKS)]


def read_load(daemon, books, seconds, allow_503=False, stop_event=None):
    """CLIENTS keep-alive sessions, each GETting the books in turn for
    `seconds`. Returns (Counter of statuses, problems): a problem is an
    answer that is neither 200 with the right book nor (when allowed) 503
    with a JSON error body, or a request that hung."""
    end = time.monotonic() + seconds
    problems = []
    lock = threading.Lock()

    def problem(text):
        with lock:
            problems.append(text)

    def client(n):
        codes = collections.Counter()
        with requests.Session() as session:
            i = n
            while time.monotonic() < end and not (stop_event and stop_event.is_set()):
                book = books[i % len(books)]
                i += 1
                try:
                    resp = session.get(daemon.url(f"/v1/books/{book['id']}"), timeout=scaled(10))
                except requests.RequestException as exc:
                    codes["exception"] += 1
                    problem(f"GET /v1/books/{book['id']}: {exc!r}")
                    continue
                codes[resp.status_code] += 1
                if resp.status_code == 200:
                    if resp.json() != book:
                        problem(f"wrong book: want {book}{describe(resp)}")
                elif resp.status_code == 503 and allow_503:
                    try:
                        assert_json_content_type(resp)
                        body = resp.json()
                        assert isinstance(body, dict) and isinstance(body.get("error"), str)
                    except (AssertionError, ValueError):
                        problem(f"503 without a JSON error body{describe(resp)}")
                else:
                    problem(f"unexpected answer{describe(resp)}")
        return codes

    with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        totals = collections.Counter()
        for codes in pool.map(client, range(CLIENTS)):
            totals.update(codes)
    return totals, problems


def db_counts(daemon):
    samples = scrape(daemon)
    return (metric_value(samples, "db_pipeline_syncs_total"),
            metric_value(samples, "db_queries_total", outcome="ok"))


def test_books_concurrent_reads_share_round_trips(daemons):
    d = daemons.start(env=BOOKS_ENV)
    books = create_books(d)
    syncs_before, ok_before = db_counts(d)

    codes, problems = read_load(d, books, seconds=2)

    assert not problems, (f"{len(problems)} bad answers of {sum(codes.values())}: {problems[:5]}"
                          f"\n{d.log_tail()}")
    assert set(codes) == {200}, codes
    syncs_after, ok_after = db_counts(d)
    syncs, queries = syncs_after - syncs_before, ok_after - ok_before
    print(f"{sum(codes.values())} GETs: {queries:g} queries in {syncs:g} round trips")
    assert queries >= codes[200], f"{queries} queries for {codes[200]} GETs"
    assert syncs < queries, (f"{queries} queries in {syncs} round trips: {CLIENTS} concurrent reads "
                             f"on one connection should share them")


def terminate_books_backends(pg, db):
    out = pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  f"WHERE application_name = 'bookstore-books' AND datname = '{db}' "
                  "AND pid <> pg_backend_pid()")
    return out.split().count("t")


def books_backends(pg, db):
    return int(pg.psql("SELECT count(*) FROM pg_stat_activity "
                       f"WHERE application_name = 'bookstore-books' AND datname = '{db}'").strip())


def test_books_reads_survive_killed_connections(daemons, pg):
    d = daemons.start(env=BOOKS_ENV)
    books = create_books(d)
    stop = threading.Event()
    killed = []

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as runner:
        load = runner.submit(read_load, d, books, scaled(6), True, stop)
        try:
            for _ in range(2):
                time.sleep(0.7)
                wait_for(lambda: books_backends(pg, d.db) >= 1, scaled(10),
                         message="Books connected to the database")
                killed.append(terminate_books_backends(pg, d.db))
            time.sleep(0.7)
        finally:
            stop.set()
        codes, problems = load.result(timeout=scaled(30))

    print(f"answers {dict(codes)}, backends terminated per kill {killed}")
    assert all(n >= 1 for n in killed), f"backends terminated per kill: {killed}"
    assert not problems, (f"{len(problems)} bad answers of {sum(codes.values())}: {problems[:5]}"
                          f"\n{d.log_tail()}")
    assert codes[200] > 0, codes
    assert set(codes) <= {200, 503}, codes
    # and afterwards every book is served again
    for book in books:
        def served(book=book):
            resp = requests.get(d.url(f"/v1/books/{book['id']}"), timeout=scaled(5))
            return resp if resp.status_code == 200 else None

        resp = wait_for(served, scaled(10), message=f"GET /v1/books/{book['id']} 200 again")
        assert resp.json() == book, describe(resp)
    assert d.alive(), d.log_tail()
