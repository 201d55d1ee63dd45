"""PostgreSQL with several hosts: a primary and a streaming standby
(pg_basebackup -R), the daemons given both in one DSN with
target_session_attrs=read-write. A switchover (primary stopped, standby
promoted) and an old primary left answering read-only are followed without a
restart: writes meanwhile get 503 with Retry-After, none hangs, and no
acknowledged order is lost. Books' BOOKS_DB_READ_DSN sends GETs to the
standby, and to the primary while the standby is away. Host names in the
DSN are looked up off the event loop (GResolver), skipping one that does not
resolve."""

import threading
import time
import uuid

import pytest
import requests

from harness import DaemonManager, OrdersApi, PgCluster, assert_status, describe, free_port, scaled, wait_for

RECOVERY_BOUND = scaled(30)  # a generous bound on finding the new primary
CLIENT_TIMEOUT = scaled(20)  # a request taking longer than this hangs


@pytest.fixture
def clusters():
    """A primary and its streaming standby; the databases are made on the
    primary before the standby is copied from it."""
    primary = PgCluster("primary", durable=True).init().start()
    standby = None
    try:
        primary.books_db = primary.new_db()
        primary.orders_db = primary.new_db()
        standby = primary.make_standby()
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


@pytest.fixture
def manager(clusters, binary, orders_binary, tmp_path):
    with DaemonManager(clusters[0], tmp_path) as m:
        yield m


def multi_dsn(first, second, db, hosts=("localhost", "127.0.0.1")):
    return (f"host={hosts[0]},{hosts[1]} port={first.port},{second.port} dbname={db} user=postgres "
            "target_session_attrs=read-write")


def app_backends(cluster, app, db):
    return int(cluster.psql("SELECT count(*) FROM pg_stat_activity "
                            f"WHERE application_name = '{app}' AND datname = '{db}'"))


def check_503(resp):
    assert resp.status_code == 503, f"expected 201 or 503{describe(resp)}"
    ra = resp.headers.get("Retry-After", "")
    assert ra.isdigit() and int(ra) >= 1, f"a 503 without Retry-After{describe(resp)}"


class OrderLoad:
    """Orders with Idempotency-Key, one after another, in a thread: every
    answer is 201 (acknowledged: remembered) or 503 with Retry-After; a
    request that times out is a hang."""

    def __init__(self, orders, book_id):
        self.api = OrdersApi(orders.url())
        self.book_id = book_id
        self.acked = []  # (order id, time)
        self.refused = 0
        self.problems = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                resp = requests.post(self.api.url("/v1/orders"), json={"book_id": self.book_id, "quantity": 1},
                                     headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=CLIENT_TIMEOUT)
            except requests.RequestException as exc:
                self.problems.append(f"no answer within {CLIENT_TIMEOUT:.0f} s: {exc!r}")
                continue
            if resp.status_code == 201:
                self.acked.append((resp.json()["id"], time.monotonic()))
                continue
            try:
                check_503(resp)
                self.refused += 1
            except AssertionError as exc:
                self.problems.append(str(exc))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT + 5)


def test_switchover_without_restart(clusters, manager):
    primary, standby = clusters
    books = manager.start(dsn=multi_dsn(primary, standby, primary.books_db), db=primary.books_db)
    orders = manager.start_orders(books=books, dsn=multi_dsn(primary, standby, primary.orders_db),
                                  db=primary.orders_db)
    pids = (books.pid, orders.pid)
    book = books.api.create_book(title="Switched over")

    with OrderLoad(orders, book["id"]) as load:
        wait_for(lambda: len(load.acked) >= 5, scaled(20), message="orders before the switchover")
        standby.wait_replayed(primary)
        primary.stop("fast")  # the standby has received everything the primary wrote
        switched = time.monotonic()
        standby.promote()
        wait_for(lambda: any(t > switched for _, t in load.acked), RECOVERY_BOUND,
                 message="an order acknowledged by the new primary")
        n_after = len(load.acked)
        wait_for(lambda: len(load.acked) >= n_after + 5, scaled(20), message="more orders after")

    assert not load.problems, "\n".join(load.problems[:10])
    assert load.refused >= 1, "no order was refused while there was no primary"
    assert (books.pid, orders.pid) == pids and books.alive() and orders.alive(), "no daemon restarted"
    assert not standby.in_recovery()
    stored = {int(x) for x in standby.psql("SELECT id FROM orders", db=primary.orders_db).split()}
    lost = [oid for oid, _ in load.acked if oid not in stored]
    assert not lost, f"acknowledged orders missing on the new primary: {lost}"
    # Books writes too, on the new primary
    created = books.api.create_book(title="After the switch")
    assert standby.psql(f"SELECT title FROM books WHERE id = {created['id']}", db=primary.books_db).strip() \
        == "After the switch"

    # the old primary comes back as a standby of the new one, listed first:
    # new connections pass it over (target_session_attrs=read-write)
    primary.follow(standby)
    assert primary.in_recovery()
    for _ in range(10):
        assert_status(requests.post(orders.url("/v1/orders"), json={"book_id": book["id"], "quantity": 1},
                                    timeout=CLIENT_TIMEOUT), 201)
    assert app_backends(primary, "bookstore-orders", primary.orders_db) == 0


def test_old_primary_left_read_only(clusters, manager):
    """The old primary still answers, read-only, on the connections the
    pool holds (as behind a proxy): a write there is refused (SQLSTATE
    25006) and answered 503 with Retry-After, not retried; the pool drops
    those connections and reconnects to the new primary."""
    primary, standby = clusters
    db = primary.books_db
    books = manager.start(dsn=multi_dsn(primary, standby, db, hosts=("127.0.0.1", "localhost")), db=db,
                          env={"BOOKS_DB_POOL_SIZE": 4})
    for i in range(8):
        books.api.create_book(title=f"Before {i}")
    assert app_backends(primary, "bookstore-books", db) >= 1
    standby.wait_replayed(primary)

    primary.psql("ALTER SYSTEM SET default_transaction_read_only = on")
    primary.psql("SELECT pg_reload_conf()")
    standby.promote()

    statuses = []
    created = []

    def written():
        resp = requests.post(books.url("/v1/books"), json={"title": "After", "author": "A", "price": "1.00"},
                             timeout=CLIENT_TIMEOUT)
        statuses.append(resp.status_code)
        if resp.status_code != 201:
            check_503(resp)
            return False
        created.append(resp.json()["id"])
        return True

    wait_for(written, RECOVERY_BOUND, interval=0.1, message="a write on the new primary")
    assert 503 in statuses, f"the first write went to the read-only server: 503 expected, got {statuses}"
    # every connection leaves the old primary, reads included
    wait_for(lambda: written() and app_backends(primary, "bookstore-books", db) == 0, RECOVERY_BOUND,
             interval=0.1, message="no connection left on the old primary")
    for book_id in created:
        resp = requests.get(books.url(f"/v1/books/{book_id}"), timeout=CLIENT_TIMEOUT)
        assert_status(resp, 200)
    assert standby.psql("SELECT count(*) FROM books WHERE title = 'After'", db=db).strip() == str(len(created))
    assert books.alive()


def replica_reads(cluster, db):
    return app_backends(cluster, "bookstore-books", db)


def test_reads_from_the_replica(clusters, manager):
    primary, standby = clusters
    db = primary.books_db
    books = manager.start(dsn=primary.dsn_kv(db), db=db,
                          env={"BOOKS_DB_READ_DSN": standby.dsn_kv(db), "BOOKS_DB_READ_POOL_SIZE": 2})
    book = books.api.create_book(title="Replicated")
    standby.wait_replayed(primary)
    wait_for(lambda: replica_reads(standby, db) >= 1, scaled(15), message="the replica's pool connected")
    wait_for(lambda: requests.get(books.url("/health"), timeout=5).json().get("status") == "healthy", scaled(15),
             message="healthy with the replica")
    assert requests.get(books.url("/health"), timeout=5).json()["services"] == {
        "database": "healthy", "database_replica": "healthy"}

    # replay paused: a book written now is on the primary only. Its POST
    # answer carries it (read-your-writes); a GET, served by the replica, not yet.
    standby.psql("SELECT pg_wal_replay_pause()")
    resp = requests.post(books.url("/v1/books"), json={"title": "Not yet replayed", "author": "A", "price": "2.00"},
                         timeout=CLIENT_TIMEOUT)
    assert_status(resp, 201)
    fresh = resp.json()
    assert fresh["title"] == "Not yet replayed"
    assert_status(requests.get(books.url(f"/v1/books/{fresh['id']}"), timeout=CLIENT_TIMEOUT), 404)
    listed = requests.get(books.url("/v1/books"), timeout=CLIENT_TIMEOUT)
    assert_status(listed, 200)
    assert [b["id"] for b in listed.json()] == [book["id"]]
    standby.psql("SELECT pg_wal_replay_resume()")
    wait_for(lambda: requests.get(books.url(f"/v1/books/{fresh['id']}"), timeout=CLIENT_TIMEOUT).status_code == 200,
             scaled(15), message="the replica catching up")
    metrics = requests.get(books.url("/metrics"), timeout=5).text
    assert "db_replica_pool_connections" in metrics and "db_pool_connections" in metrics

    # the replica stops: every GET still answers, from the primary
    standby.stop("fast")
    for _ in range(30):
        resp = requests.get(books.url(f"/v1/books/{fresh['id']}"), timeout=CLIENT_TIMEOUT)
        assert_status(resp, 200)
        assert_status(requests.get(books.url("/v1/books"), timeout=CLIENT_TIMEOUT), 200)
    health = requests.get(books.url("/health"), timeout=5)
    assert_status(health, 200)
    assert health.json() == {"status": "degraded",
                             "services": {"database": "healthy", "database_replica": "unhealthy"}}
    created = books.api.create_book(title="Written without the replica")

    # and back
    standby.start()
    wait_for(lambda: requests.get(books.url("/health"), timeout=5).json().get("status") == "healthy",
             RECOVERY_BOUND, message="the replica back in /health")
    # every event loop's replica connection back (BOOKS_DB_READ_POOL_SIZE=2):
    # a loop without one reads from the primary
    wait_for(lambda: replica_reads(standby, db) >= 2, RECOVERY_BOUND, message="the replica's pool back")
    standby.wait_replayed(primary)
    standby.psql("SELECT pg_wal_replay_pause()")
    late = books.api.create_book(title="Late")
    assert_status(requests.get(books.url(f"/v1/books/{late['id']}"), timeout=CLIENT_TIMEOUT), 404)
    assert_status(requests.get(books.url(f"/v1/books/{created['id']}"), timeout=CLIENT_TIMEOUT), 200)
    standby.psql("SELECT pg_wal_replay_resume()")

    # the primary away, the replica up (a switchover): GETs go on from the
    # replica and /health stays 200 "degraded", so a load balancer keeps the
    # host for reads (tests/cluster, scenario 3); writes are refused
    standby.wait_replayed(primary)
    primary.stop("fast")
    try:
        wait_for(lambda: requests.get(books.url("/health"), timeout=5).json()["services"]["database"] == "unhealthy",
                 scaled(15), message="the primary away in /health")
        health = requests.get(books.url("/health"), timeout=5)
        assert_status(health, 200)
        assert health.json() == {"status": "degraded",
                                 "services": {"database": "unhealthy", "database_replica": "healthy"}}
        for _ in range(10):
            assert_status(requests.get(books.url(f"/v1/books/{late['id']}"), timeout=CLIENT_TIMEOUT), 200)
            assert_status(requests.get(books.url("/v1/books"), timeout=CLIENT_TIMEOUT), 200)
        resp = requests.post(books.url("/v1/books"), json={"title": "No primary", "author": "A", "price": "1.00"},
                             timeout=CLIENT_TIMEOUT)
        assert_status(resp, 503)
    finally:
        primary.start()


def test_host_names_looked_up_off_the_loop(clusters, manager):
    """Names only (localhost from /etc/hosts, and one that resolves to
    nothing, skipped), a dead port first: the daemon connects, and its loop
    answers /livez all along."""
    primary, _ = clusters
    db = primary.books_db
    dead = free_port()
    dsn = (f"host=nothing.invalid,localhost,localhost port={dead},{dead},{primary.port} dbname={db} "
           "user=postgres target_session_attrs=read-write")
    books = manager.start(dsn=dsn, db=db, wait="listening")
    deadline = time.monotonic() + scaled(20)
    while requests.get(books.url("/health"), timeout=5).status_code != 200:
        assert_status(requests.get(books.url("/livez"), timeout=5), 200)
        assert time.monotonic() < deadline, f"never healthy\n{books.log_tail()}"
        time.sleep(0.05)
    book = books.api.create_book(title="Found by name")
    assert_status(requests.get(books.url(f"/v1/books/{book['id']}"), timeout=CLIENT_TIMEOUT), 200)
    assert app_backends(primary, "bookstore-books", db) >= 1
