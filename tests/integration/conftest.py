"""Fixtures for the bookstore-books and bookstore-orders black-box integration suite.

Run from the repo root:  /usr/bin/python3 -m pytest tests/integration
The daemons are $BOOKSTORE_BUILD_DIR/books/bookstore-books and
$BOOKSTORE_BUILD_DIR/orders/bookstore-orders (default: build/).
"""

import pytest

from harness import DaemonManager, PgCluster, ServicePair, daemon_binary


@pytest.fixture(scope="session")
def binary():
    return daemon_binary()


@pytest.fixture(scope="session")
def pg():
    """The shared PostgreSQL cluster; each test or module makes its own database."""
    with PgCluster("main") as cluster:
        yield cluster


@pytest.fixture
def daemons(pg, binary, tmp_path):
    """Start daemons for one test; all are stopped (SIGTERM, checked) at teardown."""
    with DaemonManager(pg, tmp_path) as manager:
        yield manager


@pytest.fixture
def fresh_daemon(daemons):
    """A healthy daemon on a new, empty database, for one test."""
    return daemons.start()


@pytest.fixture(scope="module")
def module_daemons(pg, binary, tmp_path_factory, request):
    with DaemonManager(pg, tmp_path_factory.mktemp(request.module.__name__)) as manager:
        yield manager


class _SharedService:
    """The module's daemon; replaced by a new one (same database) if a test
    killed it, so one crash fails one test rather than the rest of the module."""

    def __init__(self, manager):
        self.manager = manager
        self.db = manager.cluster.new_db()
        self.daemon = manager.start(db=self.db)

    def current(self):
        if not self.daemon.alive():
            self.daemon = self.manager.start(db=self.db)
        return self.daemon


@pytest.fixture(scope="module")
def shared_service(module_daemons):
    return _SharedService(module_daemons)


@pytest.fixture
def shared_daemon(shared_service):
    """One healthy daemon (and database) shared by the tests of a module."""
    return shared_service.current()


@pytest.fixture
def api(shared_daemon):
    return shared_daemon.api


# --------------------------------------------------------------------------
# bookstore-orders (always with a real bookstore-books)


@pytest.fixture(scope="session")
def orders_binary():
    """Fails (never skips) every orders test when the binary is missing."""
    return daemon_binary("orders")


@pytest.fixture
def odaemons(pg, binary, orders_binary, tmp_path):
    """A DaemonManager for one test that may start both kinds of daemon."""
    with DaemonManager(pg, tmp_path) as manager:
        yield manager


@pytest.fixture
def fresh_pair(odaemons):
    """Books and Orders on brand-new databases, for one test."""
    return ServicePair(odaemons)


@pytest.fixture(scope="module")
def module_odaemons(pg, binary, orders_binary, tmp_path_factory, request):
    with DaemonManager(pg, tmp_path_factory.mktemp(request.module.__name__)) as manager:
        yield manager


@pytest.fixture(scope="module")
def shared_pair_service(module_odaemons):
    return ServicePair(module_odaemons)


@pytest.fixture
def shared_pair(shared_pair_service):
    """One Books+Orders pair shared by the tests of a module (a daemon a test
    killed is replaced, same port and database)."""
    return shared_pair_service.current()


@pytest.fixture
def orders_api(shared_pair):
    return shared_pair.api


# A hard bound per test (setup + call + teardown): no test may hang the suite.
# Every HTTP call has its own timeout too; this is the last line of defence.
TEST_HARD_TIMEOUT = 150


class HardTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import signal

    def on_alarm(signum, frame):
        raise HardTimeout(f"{item.nodeid} exceeded {TEST_HARD_TIMEOUT}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_HARD_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
