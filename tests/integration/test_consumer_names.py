"""Restarts do not pile up consumers (issue 16 item 12).

Without ORDERS_CONSUMER_NAME / WORKER_NAME each process is the consumer
<hostname>-<pid>, a new one per restart. Each service deletes the consumers of
its groups that stopped processes of this host left: no process <pid> here,
idle longer than the claim time, nothing pending (docs/events.md, "Consumer
names"). Consumers of live processes, of other hosts, and with pending
entries stay.

Real Redis, PostgreSQL, Books, Orders and worker."""

import os
import socket
import subprocess

from harness import ServicePair, scaled, wait_for
from worker_harness import EVENTS, GROUP, NOTIFICATIONS, REQUESTS, STATUS, add_job, start_worker
from worker_harness import redis_server, workers  # noqa: F401 - fixtures

HOST = socket.gethostname()  # what g_get_host_name() says
ORDERS_GROUP = "bookstore-orders"
CLAIM_IDLE_MS = 1000
WORKER_GROUPS = ((EVENTS, GROUP), (NOTIFICATIONS, GROUP), (REQUESTS, GROUP))


def consumers(rc, stream, group):
    try:
        return {c["name"]: c for c in rc.xinfo_consumers(stream, group)}
    except Exception:  # noqa: BLE001 - no stream or group yet
        return {}


def dead_pid():
    """The pid of a process that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def start_default_worker(workers, redis_server):
    # WORKER_NAME unset: the default <hostname>-<pid>
    w = start_worker(workers, redis_server, env={"WORKER_NAME": None,
                                                 "WORKER_CLAIM_IDLE_MS": CLAIM_IDLE_MS})
    w.consumer = f"{HOST}-{w.pid}"
    return w


def traffic(rc, pair, book):
    """An order (events, status, notification) and a job (requests) that the
    current consumers take: Redis creates a consumer when it first hands it
    an entry."""
    pair.api.order(book["id"], 1)
    add_job(rc, "not-a-number", 1)  # rejected at once


def wait_consumers_in_every_group(rc, orders_consumer, worker_consumer):
    def there():
        return orders_consumer in consumers(rc, STATUS, ORDERS_GROUP) and all(
            worker_consumer in consumers(rc, s, g) for s, g in WORKER_GROUPS)

    wait_for(there, scaled(20), message=f"consumers {orders_consumer} and {worker_consumer}")


def make_consumers(rc, keep, holder):
    """In the group Orders reads, made before Orders reads it: consumers of
    `keep` with nothing pending, `holder` with one entry pending."""
    rc.xgroup_create(STATUS, ORDERS_GROUP, id="$", mkstream=True)
    for name in keep + [holder]:
        rc.xadd(STATUS, {"order_id": "999999", "status": "completed"})  # no such order
        got = rc.xreadgroup(ORDERS_GROUP, name, {STATUS: ">"}, count=1)[0][1]
        if name != holder:
            rc.xack(STATUS, ORDERS_GROUP, got[0][0])
    assert set(consumers(rc, STATUS, ORDERS_GROUP)) == set(keep) | {holder}


def test_restarts_do_not_pile_up_consumers(workers, redis_server, odaemons):
    rc = redis_server.client()
    # consumers that must stay: a live process of this host (this test) and
    # another host's; one of a stopped process with an entry pending goes
    # once Orders has taken the entry over
    keep = [f"{HOST}-{os.getpid()}", "elsewhere.example-4242"]
    holder = f"{HOST}-{dead_pid()}"
    make_consumers(rc, keep, holder)
    pair = ServicePair(odaemons, orders_env={**redis_server.env("orders"), "ORDERS_RELAY_INTERVAL_MS": 200,
                                             "ORDERS_CLAIM_IDLE_MS": CLAIM_IDLE_MS})
    book = pair.books_api.create_book(title="Name Book", author="N. Ame", price="1.00")
    w = start_default_worker(workers, redis_server)
    traffic(rc, pair, book)
    wait_consumers_in_every_group(rc, f"{HOST}-{pair.orders.pid}", w.consumer)

    for restart in range(5):
        kill = restart % 2 == 1  # a crash, every other time
        if kill:
            pair.orders.kill()
            w.kill()
        else:
            pair.orders.stop()
            w.stop()
        pair.restart_orders()
        w = start_default_worker(workers, redis_server)
        traffic(rc, pair, book)
        wait_consumers_in_every_group(rc, f"{HOST}-{pair.orders.pid}", w.consumer)

    orders_consumer = f"{HOST}-{pair.orders.pid}"

    def only_live_ones():
        return (set(consumers(rc, STATUS, ORDERS_GROUP)) == {orders_consumer, *keep}
                and all(set(consumers(rc, s, g)) == {w.consumer} for s, g in WORKER_GROUPS))

    wait_for(only_live_ones, scaled(30),
             message=f"only {orders_consumer}, {keep} in {ORDERS_GROUP} and only {w.consumer} "
                     f"in {GROUP}; have {consumers(rc, STATUS, ORDERS_GROUP).keys()} and "
                     f"{[list(consumers(rc, s, g)) for s, g in WORKER_GROUPS]}")
    # the holder's entry was taken over, not dropped: Orders applied it (an
    # unknown order: acknowledged as invalid). The holder goes as soon as
    # Orders has claimed the entry, a moment before Orders acknowledges it.
    wait_for(lambda: rc.xpending(STATUS, ORDERS_GROUP)["pending"] == 0, scaled(10),
             message=f"nothing pending in {ORDERS_GROUP}; have {rc.xpending(STATUS, ORDERS_GROUP)}")
