"""The soak: the whole stack under mixed traffic while faults are injected,
then an account of every order and job. Run through bench/soak.sh.

    /usr/bin/python3 bench/soak.py DURATION_S OUTDIR

Starts PostgreSQL, Redis (append-only file: a restart keeps the streams),
Books, Orders and the worker from $BOOKSTORE_BUILD_DIR with the test
harness of tests/integration, then for DURATION_S seconds:

  - catalogue: create, read, update, list and delete books;
  - orders: POST /v1/orders for stable books, half with an Idempotency-Key
    (retried with the same key after an error, some replayed on purpose),
    half without (never retried: an unknown outcome is just counted);
  - jobs: bookstore-enqueue, retried with the same key when Redis is away;
  - faults, from the end of the warm-up on, in turn: PostgreSQL restart,
    Redis restart, Books SIGKILL, worker SIGKILL, a burst of short
    connections to Books and Orders;
  - every 10 s: RSS and open descriptors of each daemon, Redis used_memory.

A reader follows bookstore:orders:status, bookstore:notifications and
bookstore:order-results (XREAD) the whole time. When the traffic stops it
waits for everything to drain and checks:

  - every order answered 201 is in the database, completed or failed;
  - one order per Idempotency-Key, and a key's answers all name it;
  - every job has exactly one result, and a created or replayed result names
    the order of the job's key;
  - every order's outcome (completed/failed) was published exactly once, and a
    notification queued once for each completed order and none for a failed;
  - no answer was a 500;
  - RSS and descriptors of each daemon at the end (the last sample under load)
    at most 5 % (or 2 MB / 20 descriptors) above the first sample after the
    warm-up; Redis used_memory too when the warm-up outlasts the done marks.

Writes OUTDIR/samples.csv, OUTDIR/faults.csv and OUTDIR/summary.txt; exits 1
when a check failed."""

import collections
import csv
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import redis  # noqa: E402
import requests  # noqa: E402

from harness import DaemonManager, PgCluster, ServicePair  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from worker_harness import enqueue_binary, start_worker  # noqa: E402

SAMPLE_EVERY_S = 10
STOCK_LIMIT = 50          # quantities above it fail the inventory check
RETENTION_MS = 10000      # acknowledged stream entries kept this long
DONE_TTL_S = 60           # the worker's done marks
HTTP_TIMEOUT = 5
STATUS_STREAM = "bookstore:orders:status"
NOTIFICATIONS = "bookstore:notifications"
RESULTS = "bookstore:order-results"


def log(msg):
    print(f"soak: {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


class DurableRedis(RedisServer):
    """Redis with an append-only file, as a packaged Redis keeps its data: a
    restart (SIGTERM, then start) loses nothing. Its users are the harness's
    (an ACL user per program, default off)."""

    def __init__(self, name):
        super().__init__(name, extra_args=["--appendonly", "yes", "--appendfsync", "everysec"])


class Tally:
    """Counters shared by the traffic threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.orders_201 = set()            # order ids answered 201
        self.key_orders = collections.defaultdict(set)   # Idempotency-Key -> order ids answered
        self.jobs = {}                     # job id -> idempotency key
        self.job_keys = set()
        self.server_errors = []            # (what, status, body) of 500s

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n


class Soak:
    def __init__(self, duration, outdir):
        self.duration = duration
        self.outdir = Path(outdir)
        self.warmup = max(30.0, 0.2 * duration)
        self.fault_every = min(180.0, max(12.0, (duration - self.warmup - 10) / 5))
        self.stop_traffic = threading.Event()
        self.stop_all = threading.Event()
        self.tally = Tally()
        self.samples = []
        self.faults = []
        self.t0 = None
        self.stable_books = []
        # what the reader saw: order id -> [final statuses], -> notifications; job id -> results
        self.outcomes = collections.defaultdict(list)
        self.notifications = collections.Counter()
        self.results = collections.defaultdict(list)
        self.reader_lock = threading.Lock()
        self.thread_errors = []            # a traffic thread that died fails the soak
        self.enqueue = str(enqueue_binary())

    # ---- the stack ------------------------------------------------------------

    def start_stack(self):
        self.pg = PgCluster("soak").init().start()
        self.redis = DurableRedis("soak-redis").start()
        self.manager = DaemonManager(self.pg, self.outdir / "logs")
        (self.outdir / "logs").mkdir(parents=True, exist_ok=True)
        self.pair = ServicePair(self.manager, orders_env={
            **self.redis.env("orders"), "ORDERS_STREAM_RETENTION_MS": RETENTION_MS})
        self.worker_env = {"ORDERS_API_URL": self.pair.orders.url(), "WORKER_NAME": "soak-worker",
                           "WORKER_STREAM_RETENTION_MS": RETENTION_MS, "WORKER_DONE_TTL_S": DONE_TTL_S,
                           "WORKER_RESULTS_MAX_ENTRIES": 20000, "WORKER_STOCK_LIMIT": STOCK_LIMIT,
                           "WORKER_CLAIM_IDLE_MS": 5000, "WORKER_STEP_DELAY_MS": 5,
                           "WORKER_CONCURRENCY": 20}
        self.worker = self.start_worker()
        api = self.pair.books_api
        for i in range(50):
            book = api.create_book(title=f"Soak Book {i}", author="S. Oak", price=f"{5 + i}.25")
            self.stable_books.append(book["id"])

    def start_worker(self):
        # a worker keeps its consumer name across restarts, as under systemd (%H)
        return start_worker(self.manager, self.redis, env=self.worker_env, name="worker",
                            wait="healthy")

    def daemons(self):
        return {"books": self.pair.books, "orders": self.pair.orders, "worker": self.worker}

    def stop_stack(self):
        try:
            if getattr(self, "manager", None) is not None:
                self.manager.cleanup()
        finally:
            if getattr(self, "redis", None) is not None:
                self.redis.destroy()
            self.pg.destroy()

    def elapsed(self):
        return time.monotonic() - self.t0

    # ---- traffic ----------------------------------------------------------------

    def http(self, session, method, url, what, **kw):
        """One request; None on a connection error or timeout (counted)."""
        try:
            resp = session.request(method, url, timeout=HTTP_TIMEOUT, **kw)
        except requests.RequestException:
            self.tally.count(f"{what} no answer")
            return None
        self.tally.count(f"{what} {resp.status_code}")
        if resp.status_code == 500:
            with self.tally.lock:
                self.tally.server_errors.append((what, resp.status_code, resp.text[:200]))
        return resp

    def paced(self, per_second, body):
        """Run body() per_second times a second until the traffic stops; an
        exception ends the thread and fails the soak."""
        interval = 1.0 / per_second
        next_at = time.monotonic()
        while not self.stop_traffic.is_set():
            try:
                body()
            except Exception as exc:  # noqa: BLE001 - reported in the account
                self.thread_errors.append(f"{threading.current_thread().name}: {exc!r}")
                log(f"traffic thread failed: {exc!r}")
                raise
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop_traffic.wait(delay)
            else:
                next_at = time.monotonic()

    def catalogue_traffic(self):
        session = requests.Session()
        books = self.pair.books.url("/v1/books")

        def one():
            resp = self.http(session, "POST", books, "book create",
                             json={"title": "Transient", "author": "T. Ransient", "price": "3.50"})
            if resp is None or resp.status_code != 201:
                return
            url = f"{books}/{resp.json()['id']}"
            self.http(session, "GET", url, "book get")
            self.http(session, "PUT", url, "book update",
                      json={"title": "Transient 2", "author": "T. Ransient", "price": "4.75"})
            self.http(session, "GET", books, "book list")
            self.http(session, "DELETE", url, "book delete")

        self.paced(10, one)

    def order_traffic(self, keyed):
        session = requests.Session()
        url = self.pair.orders.url("/v1/orders")
        rng = random.Random()

        def one():
            body = {"book_id": rng.choice(self.stable_books),
                    "quantity": rng.choice([1, 1, 2, 3, STOCK_LIMIT + 1])}
            if not keyed:
                resp = self.http(session, "POST", url, "order", json=body)
                if resp is not None and resp.status_code == 201:
                    with self.tally.lock:
                        self.tally.orders_201.add(resp.json()["id"])
                return
            key = f"soak-{uuid.uuid4()}"
            replays = 2 if rng.random() < 0.1 else 1
            for attempt in range(20):
                if self.stop_all.is_set():
                    return
                resp = self.http(session, "POST", url, "keyed order", json=body,
                                 headers={"Idempotency-Key": key})
                if resp is not None and resp.status_code in (200, 201):
                    with self.tally.lock:
                        self.tally.key_orders[key].add(resp.json()["id"])
                        if resp.status_code == 201:
                            self.tally.orders_201.add(resp.json()["id"])
                    replays -= 1
                    if replays == 0:
                        return
                    continue
                if resp is not None and resp.status_code < 500 and resp.status_code != 429:
                    return  # refused for good (the book was not found, say)
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
            self.tally.count("keyed order given up")

        self.paced(20, one)

    def job_traffic(self):
        rng = random.Random()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
        env.update(self.redis.env("enqueue"))

        def one():
            key = f"job-{uuid.uuid4()}"
            args = [self.enqueue, "--book-id", str(rng.choice(self.stable_books)),
                    "--quantity", str(rng.choice([1, 2, STOCK_LIMIT + 1])), "--idempotency-key", key]
            for attempt in range(30):
                if self.stop_all.is_set():
                    return
                proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30,
                                      stdin=subprocess.DEVNULL)
                self.tally.count(f"enqueue exit {proc.returncode}")
                if proc.returncode == 0:
                    job_id = json.loads(proc.stdout.splitlines()[0])["job_id"]
                    with self.tally.lock:
                        self.tally.jobs[job_id] = key
                        self.tally.job_keys.add(key)
                    return
                if proc.returncode != 69:
                    raise RuntimeError(f"bookstore-enqueue exited {proc.returncode}: {proc.stderr}")
                time.sleep(min(2.0, 0.1 * 2 ** attempt))

        self.paced(4, one)

    # ---- the reader ---------------------------------------------------------------

    def read_streams(self):
        last = {STATUS_STREAM: "0-0", NOTIFICATIONS: "0-0", RESULTS: "0-0"}
        client = None
        while not self.stop_all.is_set():
            try:
                if client is None:
                    client = self.redis.client()
                replies = client.xread(last, count=1000, block=500) or []
            except (redis.RedisError, OSError):
                client = None
                time.sleep(0.5)
                continue
            with self.reader_lock:
                for stream, entries in replies:
                    for entry_id, fields in entries:
                        last[stream] = entry_id
                        if stream == STATUS_STREAM and fields.get("status") in ("completed", "failed"):
                            self.outcomes[int(fields["order_id"])].append(fields["status"])
                        elif stream == NOTIFICATIONS:
                            self.notifications[int(fields["order_id"])] += 1
                        elif stream == RESULTS:
                            self.results[fields.get("job_id", "?")].append(fields)

    # ---- samples ------------------------------------------------------------------

    def sample(self):
        row = {"t": round(self.elapsed(), 1)}
        for name, d in self.daemons().items():
            try:
                status = Path(f"/proc/{d.pid}/status").read_text()
                rss = next(int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmRSS:"))
                fds = len(os.listdir(f"/proc/{d.pid}/fd"))
            except (OSError, StopIteration):
                rss, fds = "", ""
            row[f"{name}_rss_kb"] = rss
            row[f"{name}_fds"] = fds
        try:
            row["redis_used_memory_kb"] = self.redis.client().info("memory")["used_memory"] // 1024
        except (redis.RedisError, OSError):
            row["redis_used_memory_kb"] = ""
        with self.tally.lock:
            row["orders_201"] = len(self.tally.orders_201)
            row["jobs"] = len(self.tally.jobs)
        self.samples.append(row)
        return row

    def sampler(self):
        while not self.stop_traffic.wait(SAMPLE_EVERY_S):
            row = self.sample()
            log(" ".join(f"{k}={v}" for k, v in row.items()))

    # ---- faults -------------------------------------------------------------------

    def fault_pg_restart(self):
        self.pg.stop("fast")
        time.sleep(2)
        self.pg.start()

    def fault_redis_restart(self):
        self.redis.stop()
        time.sleep(2)
        self.redis.start()

    def fault_books_kill(self):
        self.pair.books.kill()
        time.sleep(1)
        self.pair.restart_books(wait="healthy")

    def fault_worker_kill(self):
        self.worker.kill()
        time.sleep(1)
        self.worker = self.start_worker()

    def fault_connection_burst(self):
        """2,000 short connections each to Books and Orders from 8 threads:
        half send a request and close without reading, half just close."""
        ports = [self.pair.books.port, self.pair.orders.port]

        def burst(n):
            for i in range(n):
                try:
                    with socket.create_connection(("127.0.0.1", ports[i % 2]), timeout=2) as s:
                        if i % 4 < 2:
                            s.sendall(b"GET /health HTTP/1.1\r\nHost: soak\r\n\r\n")
                except OSError:
                    self.tally.count("burst connect failed")

        threads = [threading.Thread(target=burst, args=(500,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    FAULTS = ("pg_restart", "redis_restart", "books_kill", "worker_kill", "connection_burst")

    def injector(self):
        # One burst inside the warm-up: its first burst leaves each daemon's
        # heap 1.5-2.5 MB up for good (fragments glibc cannot give back, flat
        # over later bursts), which is the daemon's working size, not growth.
        if self.stop_traffic.wait(self.warmup / 2):
            return
        log("warm-up: a connection burst, so that the baseline holds what one leaves")
        try:
            self.fault_connection_burst()
        except Exception as exc:  # noqa: BLE001 - reported in the account
            self.thread_errors.append(f"warm-up burst: {exc!r}")
            return
        k = 0
        while not self.stop_traffic.wait(max(0.0, self.warmup + 5 + k * self.fault_every - self.elapsed())):
            if self.elapsed() > self.duration - 5:
                return
            name = self.FAULTS[k % len(self.FAULTS)]
            started = self.elapsed()
            log(f"fault: {name}")
            try:
                getattr(self, f"fault_{name}")()
            except Exception as exc:  # noqa: BLE001 - reported in the account
                self.thread_errors.append(f"fault {name}: {exc!r}")
                log(f"fault {name} failed: {exc!r}")
                return
            self.faults.append((round(started, 1), round(self.elapsed() - started, 1), name))
            k += 1

    # ---- the run --------------------------------------------------------------------

    def run(self):
        log(f"starting the stack (duration {self.duration:.0f} s, warm-up {self.warmup:.0f} s, "
            f"a fault every {self.fault_every:.0f} s)")
        self.start_stack()
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.read_streams, daemon=True)]
        traffic = [threading.Thread(target=self.catalogue_traffic),
                   threading.Thread(target=self.order_traffic, args=(True,)),
                   threading.Thread(target=self.order_traffic, args=(False,)),
                   threading.Thread(target=self.job_traffic),
                   threading.Thread(target=self.sampler),
                   threading.Thread(target=self.injector)]
        for t in threads + traffic:
            t.start()
        self.stop_traffic.wait(self.duration)
        self.stop_traffic.set()
        for t in traffic:
            t.join()
        self.final = self.sample()  # the last sample under load
        log("traffic stopped; waiting for every order and job to finish")
        self.drain()
        self.stop_all.set()
        threads[0].join(5)
        return self.account()

    def db_orders(self, ids):
        if not ids:
            return {}
        out = self.pg.psql("SELECT id, status FROM orders WHERE id IN (%s)"
                           % ",".join(str(int(i)) for i in ids), db=self.pair.orders_db)
        return {int(line.split("|")[0]): line.split("|")[1] for line in out.split()}

    def all_orders(self):
        out = self.pg.psql("SELECT id, status, coalesce(idempotency_key, '') FROM orders",
                           db=self.pair.orders_db)
        return [tuple(line.split("|")) for line in out.splitlines() if line]

    def drain(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            orders = self.all_orders()
            open_orders = [o for o in orders if o[1] not in ("completed", "failed")]
            with self.reader_lock:
                missing_jobs = [j for j in self.tally.jobs if j not in self.results]
                unpublished = [o for o in orders if int(o[0]) not in self.outcomes]
            if not open_orders and not missing_jobs and not unpublished:
                log(f"drained after {time.monotonic() - deadline + timeout:.0f} s")
                return
            time.sleep(1)
        log("not drained within the time limit")

    def account(self):
        problems = []
        tally = self.tally
        orders = self.all_orders()
        status_of = {int(o[0]): o[1] for o in orders}
        key_of = {o[2]: int(o[0]) for o in orders if o[2]}

        lost = [i for i in tally.orders_201 if i not in status_of]
        unfinished = [i for i in tally.orders_201 if status_of.get(i) not in ("completed", "failed", None)]
        if lost:
            problems.append(f"{len(lost)} orders answered 201 are not in the database: {lost[:10]}")
        if unfinished:
            problems.append(f"{len(unfinished)} orders answered 201 never finished: {unfinished[:10]}")
        for key, ids in tally.key_orders.items():
            if len(ids) != 1 or key_of.get(key) not in ids:
                problems.append(f"Idempotency-Key {key}: answers named {sorted(ids)}, database {key_of.get(key)}")

        for job, key in tally.jobs.items():
            res = self.results.get(job, [])
            if len(res) != 1:
                problems.append(f"job {job}: {len(res)} results")
                continue
            outcome = res[0].get("outcome")
            if outcome in ("created", "replayed"):
                if key_of.get(key) != int(res[0].get("order_id", 0)):
                    problems.append(f"job {job}: result names order {res[0].get('order_id')}, "
                                    f"the key's order is {key_of.get(key)}")
            else:
                problems.append(f"job {job}: outcome {outcome}: {res[0].get('error')}")

        twice = {o: s for o, s in self.outcomes.items() if len(s) != 1}
        if twice:
            problems.append(f"{len(twice)} orders with more than one outcome published: "
                            f"{list(twice.items())[:5]}")
        for order_id, status in status_of.items():
            if status not in ("completed", "failed"):
                continue
            published = self.outcomes.get(order_id, [])
            if published and published[-1] != status:
                problems.append(f"order {order_id}: {status} in the database, {published} published")
            expected = 1 if status == "completed" else 0
            if self.notifications.get(order_id, 0) != expected:
                problems.append(f"order {order_id} ({status}): "
                                f"{self.notifications.get(order_id, 0)} notifications")
        problems += [f"traffic thread died: {e}" for e in self.thread_errors]
        if tally.server_errors:
            problems.append(f"{len(tally.server_errors)} answers were 500: {tally.server_errors[:3]}")

        baseline = next((s for s in self.samples if s["t"] >= self.warmup), None)
        resources = []
        if baseline is None:
            problems.append("no sample after the warm-up: run longer")
        else:
            checks = [(f"{d}_rss_kb", 2048) for d in self.daemons()] + \
                     [(f"{d}_fds", 20) for d in self.daemons()]
            if self.warmup >= DONE_TTL_S + RETENTION_MS / 1000 + 10:
                checks.append(("redis_used_memory_kb", 2048))
            for column, slack in checks:
                before, after = baseline[column], self.final[column]
                if before == "" or after == "":
                    problems.append(f"{column}: no sample")
                    continue
                allowed = before + max(before * 0.05, slack)
                resources.append((column, before, after, allowed))
                if after > allowed:
                    problems.append(f"{column} grew from {before} to {after} (at most {allowed:.0f})")

        self.write(orders, resources, problems, baseline)
        return not problems

    def write(self, orders, resources, problems, baseline):
        self.outdir.mkdir(parents=True, exist_ok=True)
        with open(self.outdir / "samples.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(self.samples[0].keys()))
            w.writeheader()
            w.writerows(self.samples)
        with open(self.outdir / "faults.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", "seconds", "fault"])
            w.writerows(self.faults)
        by_status = collections.Counter(o[1] for o in orders)
        lines = [
            f"soak: {self.duration:.0f} s, warm-up {self.warmup:.0f} s, "
            f"baseline at {baseline['t'] if baseline else '-'} s, final sample at {self.final['t']} s",
            "faults: " + ", ".join(f"{name} at {t:.0f} s ({s:.1f} s)" for t, s, name in self.faults),
            f"orders in the database: {len(orders)} ({dict(by_status)}); answered 201: "
            f"{len(self.tally.orders_201)}; Idempotency-Keys: {len(self.tally.key_orders)}",
            f"jobs: {len(self.tally.jobs)}, results: {sum(len(r) for r in self.results.values())}; "
            f"outcomes published: {sum(len(s) for s in self.outcomes.values())}; "
            f"notifications: {sum(self.notifications.values())}",
            "answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.tally.counts.items())),
            "resources (after warm-up -> end, limit):",
            *(f"  {c}: {b} -> {a} (at most {lim:.0f})" for c, b, a, lim in resources),
            "result: " + ("PASS" if not problems else "FAIL"),
            *(f"  {p}" for p in problems[:50]),
        ]
        text = "\n".join(lines) + "\n"
        (self.outdir / "summary.txt").write_text(text)
        print(text, end="")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: soak.py DURATION_S OUTDIR")
    soak = Soak(float(sys.argv[1]), sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        ok = soak.run()
    finally:
        soak.stop_traffic.set()
        soak.stop_all.set()
        soak.stop_stack()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
