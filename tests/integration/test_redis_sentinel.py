"""Redis through Sentinel: a master, a replica and three sentinels (real
redis-server processes, `--sentinel` for the sentinels) on free loopback
ports; Orders and the worker find the master with REDIS_SENTINELS and
REDIS_MASTER_NAME, and follow it without a restart:

1. orders flow end to end (Orders' relay → the worker → Orders' status
   consumer), all through the master the sentinels name;
2. the master is SIGKILLed: Sentinel promotes the replica, orders created
   before and during the failover all complete, each exactly once in
   effect, and new orders still flow;
3. SENTINEL FAILOVER (a planned switchover): the old master becomes a
   replica (it answers READONLY), the daemons leave it for the new one;
4. an entry the old master had handed to the worker's consumer and nobody
   acknowledged is done at once on the new master, not after the claim
   idle time;
5. bookstore-enqueue asks the sentinels in turn (past one that is down);
6. so does bookstorectl, and it follows a switchover.

Sentinel logs in to the servers as an ACL user of its own (`sentinel
auth-user`), the replica as a replication user (`masteruser`): with
`default` off, as bookstore-setup-redis leaves a server."""

import json
import os
import signal
import subprocess
import tempfile
import shutil
from pathlib import Path

import pytest
import redis as redislib

from harness import (ServicePair, ctl_binary, free_port, metric_value, parse_metrics, scaled,
                     wait_for)
from redis_server import REDIS_SERVER, RedisServer, credentials_dir, password_file
from worker_harness import (EVENTS, GROUP, REQUESTS, add_order_event, pending_count,
                            run_enqueue, scrape_worker, start_worker, status_sequence)
from worker_harness import workers  # noqa: F401 - fixture

MASTER_NAME = "bookstore"
SENTINEL_USER = "bookstore-test-sentinel"
REPLICA_USER = "bookstore-test-replica"
SECRET = "test-ha-" + os.urandom(8).hex()
# What Sentinel and a replica need of a server (the Redis 7.0 docs, "Sentinel
# and Redis authentication").
EXTRA_ACL = (
    f"user {SENTINEL_USER} on >{SECRET} allchannels +multi +slaveof +ping +exec +subscribe"
    " +config|rewrite +role +publish +info +client|setname +client|kill +script|kill",
    f"user {REPLICA_USER} on >{SECRET} +psync +replconf +ping",
)
# Both servers can be a replica (the old master after a switchover).
REPLICATION_ARGS = ("--masteruser", REPLICA_USER, "--masterauth", SECRET)


class Sentinel:
    """One `redis-server --sentinel` monitoring MASTER_NAME."""

    def __init__(self, base, master_port):
        self.base = base
        self.port = None
        self.proc = None
        self.master_port = master_port

    @property
    def logfile(self):
        return self.base / "sentinel.log"

    def start(self):
        for _ in range(5):
            port = free_port()
            conf = self.base / "sentinel.conf"  # Sentinel rewrites it: its own copy
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
                f"dir {self.base}\nlogfile {self.logfile}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
                f"sentinel auth-user {MASTER_NAME} {SENTINEL_USER}\n"
                f"sentinel auth-pass {MASTER_NAME} {SECRET}\n")
            self.proc = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            self.port = port
            try:
                wait_for(lambda: self.proc.poll() is not None or self._ping(), 10,
                         message="redis-sentinel to answer PING")
            except AssertionError:
                self.proc.kill()
                raise
            if self.proc.poll() is None:
                return self
        raise RuntimeError(f"could not start a sentinel:\n{self.log_tail()}")

    def _ping(self):
        try:
            return self.client(socket_timeout=0.5).ping()
        except redislib.RedisError:
            return False

    def client(self, socket_timeout=10):
        return redislib.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                              socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)

    def master_port_now(self):
        """The port of the master this sentinel names."""
        return int(self.client().execute_command("SENTINEL", "get-master-addr-by-name",
                                                 MASTER_NAME)[1])

    def log_tail(self, n=30):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def destroy(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class SentinelCluster:
    """Master, replica, three sentinels; everything gone at destroy()."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="bs-sentinel-"))
        self.master = RedisServer("sentinel-master", extra_args=REPLICATION_ARGS,
                                  extra_acl=EXTRA_ACL)
        self.replica = None
        self.sentinels = []

    def start(self):
        self.master.start()
        self.replica = RedisServer("sentinel-replica", extra_acl=EXTRA_ACL, extra_args=(
            *REPLICATION_ARGS, "--replicaof", "127.0.0.1", str(self.master.port)))
        self.replica.start()
        wait_for(lambda: self.replica.client().info("replication").get("master_link_status") == "up",
                 scaled(20), message="the replica in sync with the master")
        for i in range(3):
            base = self.base / f"sentinel-{i}"
            base.mkdir()
            self.sentinels.append(Sentinel(base, self.master.port).start())

        def all_know_each_other():
            for s in self.sentinels:
                info = s.client().execute_command("SENTINEL", "MASTER", MASTER_NAME)
                fields = dict(zip(info[::2], info[1::2]))
                if fields.get("num-other-sentinels") != "2" or fields.get("num-slaves") != "1":
                    return False
            return True

        wait_for(all_know_each_other, scaled(30),
                 message="every sentinel to know the replica and the two others")
        return self

    def sentinels_name(self, server):
        """Every sentinel names `server` as the master."""
        return all(s.master_port_now() == server.port for s in self.sentinels)

    def sentinels_env(self, program):
        """REDIS_* of `program` through the sentinels (no REDIS_HOST/PORT)."""
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "REDIS_MASTER_NAME": MASTER_NAME,
            "REDIS_USERNAME": f"bookstore-{program}",
            "REDIS_PASSWORD_FILE": str(password_file(program)),
        }

    def describe(self):
        out = [f"master :{self.master.port}\n{self.master.log_tail(15)}"]
        if self.replica is not None:
            out.append(f"replica :{self.replica.port}\n{self.replica.log_tail(15)}")
        out += [f"sentinel :{s.port}\n{s.log_tail(15)}" for s in self.sentinels]
        return "\n\n".join(out)

    def destroy(self):
        for s in self.sentinels:
            s.destroy()
        for server in (self.master, self.replica):
            if server is not None:
                server.destroy()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def cluster():
    c = SentinelCluster()
    try:
        yield c.start()
        for server in (c.master, c.replica):
            server.assert_no_denials()  # our daemons sent nothing their users may not
    except BaseException:
        print(c.describe())
        raise
    finally:
        c.destroy()


@pytest.fixture
def flow(odaemons, workers, cluster):  # noqa: F811 - workers is a fixture
    """Books, Orders and a worker, all three on the sentinels."""
    orders_env = dict(cluster.sentinels_env("orders"), ORDERS_RELAY_INTERVAL_MS=200,
                      ORDERS_CLAIM_IDLE_MS=1000)
    pair = ServicePair(odaemons, orders_env=orders_env)
    worker = start_worker(workers, None, env=dict(cluster.sentinels_env("worker"),
                                                  ORDERS_API_URL=pair.orders.url()))
    book = pair.books_api.create_book(title="Sentinel Book", author="S. Entinel", price="3.50")
    return pair, worker, book


def order_status(pair, order_id):
    resp = pair.api.get(f"/v1/orders/{order_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["status"]


def wait_completed(pair, order_ids, timeout):
    wait_for(lambda: all(order_status(pair, o) == "completed" for o in order_ids), timeout,
             interval=0.2, message=f"orders {order_ids} completed")


def completed_rows(pair):
    """{order_id: number of 'completed' rows in order_status_history}."""
    out = pair.orders_manager.cluster.psql(
        "SELECT order_id, count(*) FROM order_status_history WHERE status = 'completed' "
        "GROUP BY order_id", db=pair.orders_db)
    return {int(o): int(n) for o, n in (line.split("|") for line in out.split())}


def orders_metric(pair, name, **labels):
    import requests

    resp = requests.get(pair.orders.url("/metrics"), timeout=scaled(5))
    assert resp.status_code == 200, resp.text
    return metric_value(parse_metrics(resp.text), name, **labels)


def users_connected(server):
    """The ACL users of the clients connected to `server` now."""
    return {c.get("user") for c in server.client().client_list()}


def assert_everything_completed_once(pair, ids):
    rows = completed_rows(pair)
    assert {o: rows.get(o, 0) for o in ids} == {o: 1 for o in ids}, rows


def test_orders_flow_through_the_master_the_sentinels_name(cluster, flow):
    pair, worker, book = flow
    ids = [pair.api.order(book["id"], 1)["id"] for _ in range(3)]
    wait_completed(pair, ids, scaled(30))
    assert_everything_completed_once(pair, ids)

    # the daemons are on the master, none on the replica
    assert {"bookstore-orders", "bookstore-worker"} <= users_connected(cluster.master)
    assert not {"bookstore-orders", "bookstore-worker"} & users_connected(cluster.replica)
    master = f"127.0.0.1:{cluster.master.port}"
    pair.orders.wait_for_log(lambda r: f"master {MASTER_NAME} is at {master}" in r.get("MESSAGE", ""),
                             timeout=scaled(5), message="Orders saying which master it found")
    assert orders_metric(pair, "redis_master_switches_total", connection="orders-relay") == 0


def test_master_killed_the_daemons_follow_the_promoted_replica(cluster, flow):
    pair, worker, book = flow
    pids = (pair.orders.pid, worker.pid)
    before = [pair.api.order(book["id"], 1)["id"] for _ in range(3)]
    wait_completed(pair, before, scaled(30))

    cluster.master.kill()
    # accepted while there is no master: the outbox keeps them
    during = [pair.api.order(book["id"], 1)["id"] for _ in range(5)]
    wait_for(lambda: cluster.sentinels_name(cluster.replica), scaled(30), interval=0.2,
             message="the sentinels to promote the replica")
    after = [pair.api.order(book["id"], 1)["id"] for _ in range(3)]

    ids = before + during + after
    wait_completed(pair, ids, scaled(60))
    assert_everything_completed_once(pair, ids)
    assert (pair.orders.pid, worker.pid) == pids and pair.orders.alive() and worker.alive()

    new_master = f"127.0.0.1:{cluster.replica.port}"
    for daemon in (pair.orders, worker):
        daemon.wait_for_log(lambda r: f"is now {new_master}" in r.get("MESSAGE", ""),
                            timeout=scaled(5), message="the switch of master logged")
    assert orders_metric(pair, "redis_master_switches_total", connection="orders-relay") == 1
    samples = scrape_worker(worker)
    assert metric_value(samples, "redis_master_switches_total", connection="commands") == 1


def test_switchover_the_daemons_leave_the_old_master(cluster, flow):
    pair, worker, book = flow
    before = [pair.api.order(book["id"], 1)["id"] for _ in range(3)]
    wait_completed(pair, before, scaled(30))
    ours = {"bookstore-orders", "bookstore-worker"}
    assert ours <= users_connected(cluster.master)

    def failover():
        try:
            return cluster.sentinels[0].client().execute_command("SENTINEL", "FAILOVER",
                                                                 MASTER_NAME)
        except redislib.ResponseError as e:  # NOGOODSLAVE until it has seen the replica's state
            if "NOGOODSLAVE" in str(e) or "INPROG" in str(e):
                return False
            raise

    wait_for(failover, scaled(20), interval=0.5, message="SENTINEL FAILOVER accepted")
    wait_for(lambda: cluster.sentinels_name(cluster.replica), scaled(30), interval=0.2,
             message="the sentinels to name the replica")
    wait_for(lambda: cluster.master.client().info("replication").get("role") == "slave",
             scaled(30), message="the old master to become a replica")

    after = [pair.api.order(book["id"], 1)["id"] for _ in range(3)]
    wait_completed(pair, after, scaled(60))
    assert_everything_completed_once(pair, before + after)
    # every connection of ours moved; the old master (a replica now) has none
    wait_for(lambda: not ours & users_connected(cluster.master), scaled(15),
             message="no daemon connection left on the old master")
    assert ours <= users_connected(cluster.replica)
    assert orders_metric(pair, "redis_master_switches_total", connection="orders-relay") == 1


def test_failover_the_worker_takes_up_its_unacknowledged_entries(cluster, workers):  # noqa: F811
    consumer = "sentinel-worker"
    rc = cluster.master.client()
    rc.xgroup_create(EVENTS, GROUP, id="0", mkstream=True)
    add_order_event(rc, 90)
    # handed to the worker's consumer name, never acknowledged (as if its
    # reply had been lost with the connection)
    assert rc.xreadgroup(GROUP, consumer, {EVENTS: ">"}, count=1)
    wait_for(lambda: pending_count(cluster.replica.client(), EVENTS) == 1, scaled(10),
             message="the pending entry replicated")
    w = start_worker(workers, None, name=consumer,
                     env=dict(cluster.sentinels_env("worker"), WORKER_CLAIM_IDLE_MS=600000))
    wait_for(lambda: rc.info("clients")["blocked_clients"] == 3, scaled(10),
             message="the worker's three readers blocked on the master")
    # on the same master, an older pending entry is the claimers' (after
    # WORKER_CLAIM_IDLE_MS, here 10 minutes: test_worker_lifecycle.py)

    cluster.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
    wait_for(lambda: cluster.sentinels_name(cluster.replica), scaled(30), interval=0.2,
             message="the sentinels to name the replica")
    new = cluster.replica.client()
    wait_for(lambda: status_sequence(new, 90)[-1:] == ["completed"], scaled(30),
             message="the entry done on the new master")
    wait_for(lambda: pending_count(new, EVENTS) == 0, scaled(10), message="the entry acknowledged")
    assert w.alive()


def test_enqueue_finds_the_master_past_a_dead_sentinel(cluster):
    env = cluster.sentinels_env("enqueue")
    # a sentinel that is not there first: the next ones are asked
    env["REDIS_SENTINELS"] = f"127.0.0.1:{free_port()}," + env["REDIS_SENTINELS"]
    status, out, err = run_enqueue(None, "--book-id", 1, "--quantity", 2, env=env)
    assert status == 0, err
    assert [f["quantity"] for _, f in cluster.master.client().xrange(REQUESTS)] == ["2"]

    # REDIS_HOST as well: which one would win? Neither: a configuration error
    status, _, err = run_enqueue(None, "--book-id", 1, "--quantity", 2,
                                 env=dict(env, REDIS_HOST="127.0.0.1"))
    assert status == 78 and "REDIS_HOST" in err, err


def test_bookstorectl_finds_the_master_and_follows_a_switchover(cluster, tmp_path):
    """bookstorectl reads REDIS_SENTINELS and REDIS_MASTER_NAME from the
    worker's env file as the worker does: past a dead sentinel to the master,
    and to the new one after a switchover, never to the old master."""
    etc = tmp_path / "etc"
    (etc / "redis").mkdir(parents=True)
    shutil.copy(credentials_dir() / "ctl.password", etc / "redis" / "ctl.password")
    sentinels = cluster.sentinels_env("worker")["REDIS_SENTINELS"]
    (etc / "worker.env").write_text(
        f"WORKER_METRICS_PORT={free_port()}\n"
        f"REDIS_SENTINELS=127.0.0.1:{free_port()},{sentinels}\nREDIS_MASTER_NAME={MASTER_NAME}\n")

    def ctl(*args):
        proc = subprocess.run([str(ctl_binary()), "--config-dir", str(etc), "--json", *args],
                              capture_output=True, text=True, timeout=scaled(60),
                              stdin=subprocess.DEVNULL)
        return proc.returncode, json.loads(proc.stdout or "null"), proc.stderr

    def redis_address():
        _, doc, err = ctl("--timeout", "2", "status")
        assert doc["redis"]["reachable"], (doc, err)
        return doc["redis"]["address"]

    assert redis_address() == f"127.0.0.1:{cluster.master.port}"
    cluster.master.client().xadd(f"{REQUESTS}:dead", {"book_id": "1", "dead_reason": "test"})
    rc, doc, err = ctl("dead-letters", "list")
    assert rc == 0 and [e["dead_reason"] for e in doc["entries"]] == ["test"], (doc, err)

    cluster.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
    wait_for(lambda: cluster.sentinels_name(cluster.replica), scaled(30), interval=0.2,
             message="the sentinels to name the replica")
    wait_for(lambda: redis_address() == f"127.0.0.1:{cluster.replica.port}", scaled(30),
             message="bookstorectl on the new master")
