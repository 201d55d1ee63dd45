#!/usr/bin/python3
"""Steady load through HAProxy for tests/cluster/run.sh, and its reports.

  LOAD_TOKEN=... load.py run DIR LB BOOK_ID
      GET threads (GET /v1/books/ID and /v1/books?limit=5 on :8001) and order
      threads (POST /v1/orders on :8082 with an Idempotency-Key, sent again
      with the same key after an error or a timeout until acknowledged) until
      DIR/stop exists. Every request is a JSON line in DIR/events.jsonl.
  load.py report DIR T0 T1
      requests, failures and recovery time between two Unix times, as JSON.
  load.py check DIR DBROWS T1
      the orders acknowledged before T1 against DBROWS (psql -At: id|key|status
      of every order of the test's book, key '' when it has none), as JSON.

Standard library only: it runs on the host, in the test's network namespace.
"""

import http.client
import json
import os
import sys
import threading
import time

GET_THREADS = 2
ORDER_THREADS = 2
GET_TIMEOUT = 3.0
ORDER_TIMEOUT = 5.0
ORDER_DEADLINE = 90.0  # an order not acknowledged by then is given up


class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="utf-8")

    def write(self, **event):
        line = json.dumps(event, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()


def request(host, port, method, path, timeout, headers=None, body=None):
    """(status, parsed JSON or None); status 0 and the error on failure."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return resp.status, parsed
    except (OSError, http.client.HTTPException) as e:
        return 0, str(e)
    finally:
        conn.close()


def get_loop(stop, log, host, book_id, n):
    i = 0
    while not stop():
        i += 1
        path = f"/v1/books/{book_id}" if i % 2 else "/v1/books?limit=5"
        t = time.time()
        status, body = request(host, 8001, "GET", path, GET_TIMEOUT)
        ev = {"k": "get", "t": t, "d": round(time.time() - t, 3), "s": status}
        if status != 200:
            ev["e"] = body if status == 0 else str(body)[:200]
        log.write(**ev)
        time.sleep(0.05)


def order_loop(stop, log, host, token, book_id, n):
    seq = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"book_id": book_id, "quantity": 1})
    while not stop():
        seq += 1
        key = f"cl-{os.getpid()}-{n}-{seq}"
        started = time.time()
        while True:
            t = time.time()
            status, reply = request(host, 8082, "POST", "/v1/orders", ORDER_TIMEOUT,
                                    dict(headers, **{"Idempotency-Key": key}), body)
            ev = {"k": "order", "t": t, "d": round(time.time() - t, 3), "s": status, "key": key}
            if status in (200, 201) and isinstance(reply, dict) and "id" in reply:
                ev["id"] = reply["id"]
                log.write(**ev)
                break
            ev["e"] = reply if status == 0 else str(reply)[:200]
            log.write(**ev)
            if time.time() - started > ORDER_DEADLINE:
                log.write(k="gaveup", t=time.time(), key=key)
                break
            time.sleep(0.2)
        time.sleep(0.1)


def run(d, lb, book_id):
    token = os.environ["LOAD_TOKEN"]
    host = lb.split("//")[-1]
    log = Log(os.path.join(d, "events.jsonl"))
    stop_file = os.path.join(d, "stop")

    def stop():
        return os.path.exists(stop_file)

    threads = [threading.Thread(target=get_loop, args=(stop, log, host, book_id, i))
               for i in range(GET_THREADS)]
    threads += [threading.Thread(target=order_loop, args=(stop, log, host, token, book_id, i))
                for i in range(ORDER_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def events(d):
    with open(os.path.join(d, "events.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def outage(evs):
    """The longest time from a failed request to the next success of its kind."""
    worst, first_fail = 0.0, None
    for ev in evs:
        if ev["s"] in (200, 201):
            if first_fail is not None:
                worst = max(worst, ev["t"] + ev["d"] - first_fail)
                first_fail = None
        elif first_fail is None:
            first_fail = ev["t"]
    if first_fail is not None:  # still failing at the end of the window
        worst = max(worst, float("inf"))
    return worst


def report(d, t0, t1):
    evs = [e for e in events(d) if t0 <= e["t"] <= t1]
    gets = [e for e in evs if e["k"] == "get"]
    orders = [e for e in evs if e["k"] == "order"]
    failed_gets = [e for e in gets if e["s"] != 200]
    failed_orders = [e for e in orders if e["s"] not in (200, 201)]
    recovery = max(outage(gets), outage(orders))
    out = {
        "gets": len(gets), "gets_failed": len(failed_gets),
        "orders": len({e["key"] for e in orders}),
        "order_attempts": len(orders), "order_attempts_failed": len(failed_orders),
        "acked": sum(1 for e in orders if "id" in e),
        "gaveup": sum(1 for e in evs if e["k"] == "gaveup"),
        "recovery_s": None if recovery == float("inf") else round(recovery, 2),
        "first_order_failure": min((e["t"] for e in failed_orders), default=None),
        "last_order_failure_end": max((e["t"] + e["d"] for e in failed_orders), default=None),
        "failed_examples": [
            {k: e.get(k) for k in ("k", "s", "e")} for e in (failed_gets + failed_orders)[:5]],
    }
    print(json.dumps(out))


def check(d, dbrows, t1):
    acked = {}  # key -> [ids the client was given]
    for e in events(d):
        if e["k"] == "order" and "id" in e and e["t"] <= t1:
            acked.setdefault(e["key"], [])
            if e["id"] not in acked[e["key"]]:
                acked[e["key"]].append(e["id"])
    rows = {}  # id -> (key, status)
    by_key = {}
    with open(dbrows, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            oid, key, status = line.rstrip("\n").split("|")
            rows[int(oid)] = (key, status)
            by_key.setdefault(key, []).append(int(oid))
    ids = [i for v in acked.values() for i in v]
    lost = [i for i in ids if i not in rows]
    # two ids for one key, one id for two keys, or two rows for one key
    duplicated = [k for k, v in acked.items() if len(v) > 1]
    duplicated += [i for i in set(ids) if ids.count(i) > 1]
    duplicated += [k for k, v in by_key.items() if len(v) > 1 or k == ""]
    mismatched = [i for k, v in acked.items() for i in v if i in rows and rows[i][0] != k]
    not_final = [i for i in ids if i in rows and rows[i][1] not in ("completed", "failed")]
    statuses = {}
    for i in ids:
        if i in rows:
            statuses[rows[i][1]] = statuses.get(rows[i][1], 0) + 1
    print(json.dumps({
        "acked": len(ids), "lost": len(lost), "duplicated": len(duplicated),
        "mismatched": len(mismatched), "not_final": len(not_final), "statuses": statuses,
        "unacked_in_db": len([k for k in by_key if k and k not in acked]),
        "examples": {"lost": lost[:5], "duplicated": duplicated[:5], "not_final": not_final[:5]},
    }))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "run" and len(sys.argv) == 5:
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "report" and len(sys.argv) == 5:
        report(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "check" and len(sys.argv) == 5:
        check(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
