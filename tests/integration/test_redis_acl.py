"""Least privilege in Redis: Orders, the worker and bookstore-enqueue each
log in as their own ACL user (data/bookstore-setup-redis), `default` is off.

Every test of the suite already runs that way (redis_server.py); here: each
program does its whole job with nothing refused, each user is refused what
only another program does, the default user is refused, a wrong password or
a missing right leaves the daemon unhealthy with the reason logged and the
password nowhere, Redis restarted with its ACL file is logged into again,
and the setup command itself (passwords kept, --print, systemd drop-ins)."""

import os
import re
import stat
import subprocess

import pytest
import redis

from harness import EX_CONFIG, REPO_ROOT, ServicePair, free_port, scaled, wait_for
from redis_server import ADMIN_USER, SETUP_REDIS, password_file, setup_redis
from worker_harness import (DONE_PREFIX, EVENTS, GROUP, NOTIFICATIONS, REQUESTS, RESULTS, STATUS,
                            health, run_enqueue, spawn_worker, start_worker, worker_env)
from worker_harness import redis_server, rc, workers  # noqa: F401 - fixtures

ORDERS_GROUP = "bookstore-orders"


@pytest.fixture
def pair(odaemons, redis_server):
    return ServicePair(odaemons, orders_env={**redis_server.env("orders"),
                                             "ORDERS_RELAY_INTERVAL_MS": 100,
                                             "ORDERS_STREAM_RETENTION_MS": 0})


@pytest.fixture
def book(pair):
    return pair.books_api.create_book(title="ACL Book", author="A. Cl", price="3.50")


def users_connected(rc):
    """{user: number of connections} from CLIENT LIST."""
    counts = {}
    for client in rc.client_list():
        counts[client["user"]] = counts.get(client["user"], 0) + 1
    return counts


def denied(client, *command):
    """True when Redis refuses `command` for lack of a right (NOPERM)."""
    try:
        client.execute_command(*command)
    except redis.exceptions.NoPermissionError:
        return True
    except redis.ResponseError as e:
        assert "NOPERM" not in str(e), e
        return False
    return False


def order_status(pair, order_id):
    return pair.api.get(f"/v1/orders/{order_id}").json()["status"]


def secret(program):
    return password_file(program).read_text().strip()


# --------------------------------------------------------------------------
# each program with its own user


def test_every_program_does_its_job_and_nothing_is_refused(workers, redis_server, rc, pair, book):
    rc.execute_command("ACL", "LOG", "RESET")
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url(),
                                                 "WORKER_STREAM_RETENTION_MS": 0,
                                                 "WORKER_MAX_DELIVERIES": 1})
    order = pair.api.order(book["id"], 1)
    wait_for(lambda: order_status(pair, order["id"]) == "completed", scaled(30),
             message="the order completed (relay, worker, status consumer)")
    status, out, err = run_enqueue(redis_server, "--book-id", book["id"], "--quantity", 1,
                                   "--wait", 20)
    assert status == 0, (out, err)
    # an event that fails goes to the dead letters (WORKER_MAX_DELIVERIES=1)
    rc.xadd(EVENTS, {"type": "order.created", "quantity": "1"})
    wait_for(lambda: rc.exists(EVENTS + ":dead") == 1, scaled(20), message="a dead letter")
    # both trimmers ran over their streams (retention 0)
    wait_for(lambda: rc.xlen(EVENTS) == 0 and rc.xlen(STATUS) == 0 and rc.xlen(NOTIFICATIONS) == 0,
             scaled(20), message="the consumed streams trimmed")
    users = users_connected(rc)
    assert users.get("bookstore-orders", 0) >= 2 and users.get("bookstore-worker", 0) >= 2, users
    assert "default" not in users, users
    assert w.stop() == 0, w.log_tail()  # the stop claims back with CLIENT KILL, XPENDING, XCLAIM
    assert redis_server.acl_denials() == []


def test_the_daemons_log_in_as_their_users(workers, redis_server, rc, pair):
    w = start_worker(workers, redis_server)
    assert any(re.search(r"Redis \(.*\) connected to .* as bookstore-worker", r.get("MESSAGE", ""))
               for r in w.log_records())
    wait_for(lambda: any("as bookstore-orders" in r.get("MESSAGE", "")
                         for r in pair.orders.log_records()), scaled(10),
             message="Orders connected as bookstore-orders")


# --------------------------------------------------------------------------
# what each user is refused


def test_default_user_is_refused(redis_server):
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.RedisError, match="WRONGPASS"):
        redis.Redis(host="127.0.0.1", port=redis_server.port, username="default",
                    password="anything", socket_timeout=5).ping()
    assert "off" in redis_server.client().acl_getuser("default")["flags"]


def test_orders_user_cannot_do_what_the_worker_does(redis_server, rc):
    orders = redis_server.client_as("orders")
    rc.xgroup_create(EVENTS, GROUP, "0", mkstream=True)
    assert orders.xadd(EVENTS, {"type": "order.created"})  # its own: allowed
    assert denied(orders, "XREADGROUP", "GROUP", GROUP, "x", "STREAMS", EVENTS, ">")
    assert denied(orders, "SET", DONE_PREFIX + "1", "completed")
    assert denied(orders, "GET", DONE_PREFIX + "1")
    assert denied(orders, "XADD", STATUS, "*", "order_id", "1", "status", "completed")
    assert denied(orders, "XADD", NOTIFICATIONS, "*", "type", "x")
    assert denied(orders, "XADD", REQUESTS, "*", "book_id", "1")
    assert denied(orders, "EVAL", "return 1", "0")
    assert denied(orders, "CLIENT", "KILL", "ID", "1")
    for command in (("KEYS", "*"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("GET", "other"),
                    ("DEL", EVENTS), ("XADD", "other", "*", "a", "b")):
        assert denied(orders, *command), command
    rc.execute_command("ACL", "LOG", "RESET")  # refused on purpose


def test_worker_user_cannot_do_what_orders_or_enqueue_do(redis_server, rc):
    worker = redis_server.client_as("worker")
    rc.xgroup_create(STATUS, ORDERS_GROUP, "0", mkstream=True)
    assert worker.xadd(STATUS, {"order_id": "1", "status": "processing"})  # its own: allowed
    assert worker.set(DONE_PREFIX + "1", "completed", ex=60)
    assert denied(worker, "XADD", EVENTS, "*", "type", "order.created")
    assert denied(worker, "XTRIM", EVENTS, "MAXLEN", "0")  # Orders keeps it bounded
    assert denied(worker, "XREADGROUP", "GROUP", ORDERS_GROUP, "x", "STREAMS", STATUS, ">")
    assert denied(worker, "XADD", REQUESTS, "*", "book_id", "1")
    assert denied(worker, "SET", "bookstore:other", "1")
    for command in (("KEYS", "*"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("DEL", STATUS),
                    ("EVAL", "return 1", "1", "other")):
        assert denied(worker, *command), command
    rc.execute_command("ACL", "LOG", "RESET")


def test_enqueue_user_adds_jobs_and_reads_results_only(redis_server, rc):
    enqueue = redis_server.client_as("enqueue")
    assert enqueue.xadd(REQUESTS, {"book_id": "1", "quantity": "1"})
    assert enqueue.xrevrange(RESULTS, count=1) == []
    assert denied(enqueue, "XRANGE", REQUESTS, "-", "+")
    assert denied(enqueue, "XADD", RESULTS, "*", "a", "b")
    assert denied(enqueue, "XADD", EVENTS, "*", "a", "b")
    assert denied(enqueue, "XREADGROUP", "GROUP", GROUP, "x", "STREAMS", REQUESTS, ">")
    assert denied(enqueue, "PING") and denied(enqueue, "KEYS", "*")
    rc.execute_command("ACL", "LOG", "RESET")


# --------------------------------------------------------------------------
# refused logins


def test_wrong_password_is_unhealthy_logged_and_never_shown(workers, redis_server, odaemons,
                                                            tmp_path):
    wrong = "wrong-" + os.urandom(8).hex()
    path = tmp_path / "wrong.password"
    path.write_text(wrong + "\n")
    w = start_worker(workers, redis_server, env={"REDIS_PASSWORD_FILE": path}, wait="listening")
    wait_for(lambda: any("WRONGPASS" in r.get("MESSAGE", "") for r in w.log_records()),
             scaled(10), message="the worker logs WRONGPASS")
    assert health(w)[0] == 503
    pair = ServicePair(odaemons, orders_env={**redis_server.env("orders"),
                                             "REDIS_PASSWORD_FILE": str(path)})
    wait_for(lambda: any("WRONGPASS" in r.get("MESSAGE", "") for r in pair.orders.log_records()),
             scaled(10), message="Orders logs WRONGPASS")
    resp = pair.api.get("/health")
    assert resp.json()["services"]["redis"] == "unhealthy", resp.text
    for d in (w, pair.orders):
        assert wrong not in d.stderr_text() + d.stdout_text()
    status, out, err = run_enqueue(redis_server, "--book-id", 1, "--quantity", 1,
                                   env={"REDIS_PASSWORD_FILE": path})
    assert status == 69 and "WRONGPASS" in err and wrong not in out + err, (status, out, err)


def test_a_missing_right_is_logged_and_healthy_again_once_restored(workers, redis_server, rc):
    w = start_worker(workers, redis_server)
    rc.execute_command("ACL", "SETUSER", "bookstore-worker", "-client|setname")
    rc.execute_command("CLIENT", "KILL", "USER", "bookstore-worker")
    wait_for(lambda: health(w)[0] == 503, scaled(10), message="/health 503 without the right")
    wait_for(lambda: any("NOPERM" in r.get("MESSAGE", "") and "CLIENT SETNAME" in r.get("MESSAGE", "")
                         for r in w.log_records()), scaled(10), message="the NOPERM logged")
    done = setup_redis(redis_server.port, "worker", "--no-systemd")  # the rules again, as shipped
    assert done.returncode == 0, done.stderr
    w.wait_healthy(scaled(20))
    rc.execute_command("ACL", "LOG", "RESET")  # the CLIENT SETNAME refused on purpose


def test_password_file_is_never_in_cmdline_environ_or_logs(workers, redis_server, rc, pair, book):
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    order = pair.api.order(book["id"], 1)
    wait_for(lambda: order_status(pair, order["id"]) == "completed", scaled(30),
             message="the order completed")
    for d, program in ((w, "worker"), (pair.orders, "orders")):
        password = secret(program).encode()
        for part in ("cmdline", "environ"):
            assert password not in open(f"/proc/{d.proc.pid}/{part}", "rb").read(), part
        assert password.decode() not in d.stderr_text() + d.stdout_text()
        assert b"REDIS_PASSWORD_FILE=" in open(f"/proc/{d.proc.pid}/environ", "rb").read()


def test_the_systemd_credential_is_read(workers, redis_server, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "redis-password").write_text(secret("worker") + "\n")
    w = start_worker(workers, redis_server, env={"REDIS_PASSWORD_FILE": None,
                                                 "CREDENTIALS_DIRECTORY": creds})
    assert health(w)[0] == 200


@pytest.mark.parametrize("env, message", [
    ({"REDIS_PASSWORD_FILE": None}, "REDIS_USERNAME=bookstore-worker needs a password"),
    ({"REDIS_PASSWORD_FILE": "/nonexistent/redis.password"}, "is not a readable file"),
    ({"REDIS_PASSWORD": "also"}, "REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set"),
])
def test_bad_password_settings_are_exit_78(workers, redis_server, env, message):
    w = spawn_worker(workers, worker_env(redis_server, free_port(), env))
    assert w.wait(scaled(20)) == EX_CONFIG
    assert message in w.stderr_text() + w.stdout_text()


# --------------------------------------------------------------------------
# Redis restarted


def test_redis_restarted_with_its_acl_the_daemons_log_in_again(workers, redis_server, pair, book):
    w = start_worker(workers, redis_server, env={"ORDERS_API_URL": pair.orders.url()})
    redis_server.kill()
    wait_for(lambda: health(w)[0] == 503, scaled(10), message="the worker sees Redis gone")
    redis_server.start()  # same port, same ACL file, no data
    w.wait_healthy(scaled(20))
    order = pair.api.order(book["id"], 1)
    wait_for(lambda: order_status(pair, order["id"]) == "completed", scaled(30),
             message="an order completes after the restart")
    users = users_connected(redis_server.client())
    assert users.get("bookstore-orders") and users.get("bookstore-worker"), users
    assert redis_server.acl_denials() == []


# --------------------------------------------------------------------------
# the setup command


def run_setup(*args, env=None):
    return subprocess.run(["sh", str(SETUP_REDIS), *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_setup_makes_root_only_passwords_keeps_them_and_writes_dropins(redis_server, tmp_path):
    creds, units = tmp_path / "redis", tmp_path / "systemd"
    env = {"BOOKSTORE_REDIS_CREDENTIALS": str(creds), "BOOKSTORE_SYSTEMD_DIR": str(units)}
    done = setup_redis(redis_server.port, env=env)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(creds.stat().st_mode) == 0o700
    first = {}
    for p in ("orders", "worker", "enqueue"):
        f = creds / f"{p}.password"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        first[p] = f.read_text().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", first[p])
        assert f"Redis password of bookstore-{p} in" in done.stdout
        assert first[p] not in done.stdout + done.stderr
        r = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
        assert r.execute_command("AUTH", f"bookstore-{p}", first[p])
    dropin = (units / "bookstore-orders.service.d" / "redis-user.conf").read_text()
    assert "Environment=REDIS_USERNAME=bookstore-orders" in dropin
    assert f"LoadCredential=redis-password:{creds}/orders.password" in dropin
    for unit in ("bookstore-worker.service", "bookstore-worker@.service"):
        assert f"redis-password:{creds}/worker.password" in (units / f"{unit}.d" /
                                                               "redis-user.conf").read_text()
    again = setup_redis(redis_server.port, env=env)
    assert again.returncode == 0 and "generating" not in again.stdout, again.stdout
    assert {p: (creds / f"{p}.password").read_text().strip() for p in first} == first


def test_setup_refuses_to_lock_out_the_default_administrator(redis_server, tmp_path):
    done = run_setup("--port", str(redis_server.port), "--disable-default", "--no-systemd",
                     env={"BOOKSTORE_REDIS_CREDENTIALS": str(tmp_path)})
    assert done.returncode == 2 and "--admin-user" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_print_shows_the_lines_of_the_configuration_reference(redis_server):
    printed = run_setup("--print", env={"BOOKSTORE_REDIS_CREDENTIALS": "/nonexistent"}).stdout
    lines = printed.splitlines()
    assert [l.split()[2] for l in lines] == ["bookstore-orders", "bookstore-worker",
                                             "bookstore-enqueue", "bookstore-ctl"]
    reference = (REPO_ROOT / "docs" / "configuration.md").read_text()
    for line in lines:
        assert line in reference, f"docs/configuration.md (Redis users) lacks: {line}"
    hashed = run_setup("--print", "orders", env={"BOOKSTORE_REDIS_CREDENTIALS":
                                                 str(password_file("orders").parent)}).stdout
    assert hashed.split()[5].startswith("#") and secret("orders") not in hashed
    assert redis_server.client().acl_getuser("bookstore-orders")["passwords"] == \
        [hashed.split()[5][1:]]
    assert ADMIN_USER not in printed
