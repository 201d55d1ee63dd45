"""Test harness for the bookstore-books and bookstore-orders integration suite.

Everything here is plain Python (subprocess, socket, requests): a throwaway
PostgreSQL cluster, the daemon under test, raw-socket HTTP helpers and a few
assertion helpers.  Fixtures live in conftest.py and use these classes.
"""

import atexit
import itertools
import json
import os
import pwd
import re
import shutil
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

# The tests talk to 127.0.0.1 only: never through a proxy from the environment.
for _var in ("no_proxy", "NO_PROXY"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = PG_BIN / "psql"

DEFAULT_TIMEOUT = 5  # seconds, for every HTTP request unless a test says otherwise
HEALTH_DEADLINE = 15

EX_CONFIG = 78

# Processes and clusters still running when the interpreter exits (a crash of
# the test session, ^C during setup...) are killed here as a last resort.
_LIVE_PROCS = set()
_LIVE_CLUSTERS = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_LIVE_PROCS):
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(5)
            except Exception:
                pass
    for cluster in list(_LIVE_CLUSTERS):
        try:
            cluster.destroy()
        except Exception:
            pass


# --------------------------------------------------------------------------
# small utilities


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.05, message="condition"):
    """Poll predicate() until it returns a truthy value; return that value.

    Raises AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polling swallows transient errors
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {message}{extra}")
        time.sleep(interval)


def daemon_wrapper():
    """BOOKSTORE_DAEMON_WRAPPER, e.g. "valgrind --error-exitcode=99 ...", runs
    each daemon under a tool; its exit status is checked like the daemon's."""
    return shlex.split(os.environ.get("BOOKSTORE_DAEMON_WRAPPER", ""))


def build_dir():
    value = os.environ.get("BOOKSTORE_BUILD_DIR")
    if not value:
        return REPO_ROOT / "build"
    path = Path(value)
    if not path.is_absolute():
        cwd_path = Path.cwd() / path
        path = cwd_path if cwd_path.exists() else REPO_ROOT / path
    return path


DAEMON_KINDS = ("books", "orders")


def daemon_binary(kind="books"):
    """build/<kind>/bookstore-<kind>: kind is "books" or "orders".  A missing
    binary fails the test (never a silent skip)."""
    if kind not in DAEMON_KINDS:
        raise ValueError(f"unknown daemon kind {kind!r}")
    path = build_dir() / kind / f"bookstore-{kind}"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"{kind} daemon binary not found or not executable: {path}\n"
            f"build it first (ninja -C {build_dir()}) or set BOOKSTORE_BUILD_DIR",
            pytrace=False,
        )
    return path


def ctl_binary():
    """build/ctl/bookstorectl; a missing binary fails the test."""
    path = build_dir() / "ctl" / "bookstorectl"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"bookstorectl not found or not executable: {path}\n"
                    f"build it first (ninja -C {build_dir()}) or set BOOKSTORE_BUILD_DIR", pytrace=False)
    return path


def time_scale():
    """How much slower the daemons run than natively: BOOKSTORE_TIME_SCALE if
    set, else 10 under BOOKSTORE_DAEMON_WRAPPER (valgrind), else 1.  Multiply
    waits and timing bounds by it (scaled())."""
    value = os.environ.get("BOOKSTORE_TIME_SCALE")
    if value:
        return float(value)
    return 10.0 if daemon_wrapper() else 1.0


def scaled(seconds):
    return seconds * time_scale()


def project_version():
    text = (REPO_ROOT / "meson.build").read_text()
    m = re.search(r"version\s*:\s*'([^']+)'", text)
    return m.group(1) if m else None


def describe(resp):
    """A one-paragraph description of a response, for assertion messages."""
    if resp is None:
        return "<no response>"
    req = resp.request
    body = req.body
    if isinstance(body, bytes):
        body = body[:300]
    elif isinstance(body, str):
        body = body[:300]
    elif body is not None:
        body = "<streamed>"
    hdrs = {k: v for k, v in resp.headers.items()}
    return (
        f"\n  request : {req.method} {req.url} body={body!r}"
        f"\n  response: {resp.status_code} headers={hdrs}"
        f"\n  body    : {resp.text[:1000]!r}"
    )


def assert_status(resp, status):
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}{describe(resp)}"


def assert_json_content_type(resp):
    ct = resp.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", (
        f"Content-Type is {ct!r}, expected application/json{describe(resp)}"
    )


def assert_error(resp, status, code):
    """An error response: the status, a JSON body {"error": code, "message": "..."}."""
    assert_status(resp, status)
    assert_json_content_type(resp)
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON{describe(resp)}")
    assert isinstance(body, dict), f"error body is not an object{describe(resp)}"
    assert body.get("error") == code, f"expected error code {code}{describe(resp)}"
    assert isinstance(body.get("message"), str) and body["message"].strip(), (
        f"error body lacks a message{describe(resp)}"
    )
    return body


TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
PRICE_RE = re.compile(r"^\d{1,8}\.\d\d$")
BOOK_KEYS = {"id", "title", "author", "description", "price", "active", "created_at", "updated_at"}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_ts(value):
    assert isinstance(value, str) and TIMESTAMP_RE.match(value), f"not an RFC 3339 UTC timestamp: {value!r}"
    # fromisoformat (3.11) accepts 'Z' but at most 6 fractional digits
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$", value)
    frac = (m.group(2) or ".0")[:7]
    return datetime.fromisoformat(m.group(1) + frac + "+00:00")


def assert_book_shape(book):
    assert isinstance(book, dict), f"book is not an object: {book!r}"
    assert set(book) == BOOK_KEYS, f"book keys {sorted(book)} != {sorted(BOOK_KEYS)}: {book!r}"
    assert isinstance(book["id"], int) and not isinstance(book["id"], bool) and book["id"] > 0, book
    assert isinstance(book["title"], str), book
    assert isinstance(book["author"], str), book
    assert book["description"] is None or isinstance(book["description"], str), book
    assert isinstance(book["price"], str) and PRICE_RE.match(book["price"]), f"bad price: {book!r}"
    assert isinstance(book["active"], bool), book
    parse_ts(book["created_at"])
    parse_ts(book["updated_at"])


def parse_link_header(value):
    """RFC 8288 Link header -> {rel: url}."""
    links = {}
    if not value:
        return links
    for part in re.split(r",\s*(?=<)", value):
        m = re.match(r"\s*<([^>]*)>\s*(.*)$", part)
        assert m, f"unparsable Link header part {part!r} in {value!r}"
        url, params = m.groups()
        for param in params.split(";"):
            param = param.strip()
            pm = re.match(r'rel\s*=\s*"?([^";]+)"?', param)
            if pm:
                for rel in pm.group(1).split():
                    links[rel] = url
    return links


# --------------------------------------------------------------------------
# HTTP client helpers


class Api:
    """Thin wrapper over requests with a base URL and a default timeout."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, **kw):
        kw.setdefault("timeout", DEFAULT_TIMEOUT)
        return requests.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create_book(self, title="A Book", author="An Author", price="9.99", **extra):
        payload = {"title": title, "author": author, "price": price}
        payload.update(extra)
        resp = self.post("/v1/books", json=payload)
        assert_status(resp, 201)
        book = resp.json()
        assert_book_shape(book)
        return book

    def total_count(self):
        resp = self.get("/v1/books", params={"limit": 1})
        assert_status(resp, 200)
        assert "X-Total-Count" in resp.headers, f"no X-Total-Count{describe(resp)}"
        return int(resp.headers["X-Total-Count"])


def read_http_response(sock, timeout=DEFAULT_TIMEOUT):
    """Read one HTTP/1.1 response from a raw socket.

    Returns (status, headers_dict_lowercase, body_bytes).  Raises
    ConnectionError if the server closes before a full status line+headers."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete response head within {timeout}s; got {buf[:200]!r}")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before response head; got {buf[:200]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()

    def more():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("response body incomplete")
        sock.settimeout(remaining)
        return sock.recv(65536)

    body = rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            chunk = more()
            if not chunk:
                break
            body += chunk
        body = body[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        raw = body
        out = b""
        while True:
            while b"\r\n" not in raw:
                chunk = more()
                if not chunk:
                    return status, headers, out
                raw += chunk
            size_line, _, raw = raw.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(raw) < size + 2:
                chunk = more()
                if not chunk:
                    break
                raw += chunk
            if size == 0:
                break
            out += raw[:size]
            raw = raw[size + 2:]
        body = out
    elif status not in (204, 304) and not (100 <= status < 200):
        while True:
            try:
                chunk = more()
            except (TimeoutError, socket.timeout):
                break
            if not chunk:
                break
            body += chunk
    return status, headers, body


def raw_exchange(port, head, body_chunks=(), timeout=DEFAULT_TIMEOUT):
    """Send a raw request (head bytes, then body chunks from a background
    thread, tolerating the server closing early) and read the response."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    send_error = []

    def sender():
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError as exc:  # server closed early: expected for 413
            send_error.append(exc)

    try:
        sock.sendall(head)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        try:
            return read_http_response(sock, timeout)
        finally:
            t.join(timeout)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def connection_refused(port):
    """True when nothing accepts connections on 127.0.0.1:port."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


# --------------------------------------------------------------------------
# PostgreSQL


class PgCluster:
    """A throwaway PostgreSQL 15 cluster in a temp dir, run as user postgres."""

    _db_counter = itertools.count(1)

    def __init__(self, name="pg", durable=False):
        """durable: keep synchronous_commit on, for tests that crash the server
        (pg_ctl stop -m immediate) and expect committed rows to survive."""
        self.durable = durable
        if not (PG_BIN / "pg_ctl").exists():
            pytest.fail(f"PostgreSQL server binaries not found in {PG_BIN}", pytrace=False)
        pw = pwd.getpwnam("postgres")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        # not under /tmp/pytest-of-root: that is 0700 and postgres cannot enter it
        self.base = Path(tempfile.mkdtemp(prefix=f"bs-{name}-"))
        self.data = self.base / "data"
        self.sockdir = self.base / "s"
        self.logfile = self.base / "postgres.log"
        self.sockdir.mkdir()
        for p in (self.base, self.sockdir):
            os.chown(p, self.uid, self.gid)
        os.chmod(self.base, 0o755)
        self.port = None
        _LIVE_CLUSTERS.add(self)

    def _as_postgres(self, args, timeout=60, check=True):
        proc = subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            cwd=self.base,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{self.log_tail()}")
        return proc

    def log_tail(self, n=30):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def init(self):
        self._as_postgres([PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                           "-E", "UTF8", "--locale=C", "--no-sync"])
        return self

    _OWN_SETTINGS = ("port", "listen_addresses", "unix_socket_directories", "fsync", "synchronous_commit",
                     "full_page_writes", "max_connections", "log_min_messages", "log_connections")

    def _write_port(self, port):
        conf = self.data / "postgresql.auto.conf"
        # postgresql.auto.conf is the last word; rewrite our block every time
        # (keeping what others put there: a standby's primary_conninfo, ALTER SYSTEM)
        lines = [ln for ln in conf.read_text().splitlines()
                 if not ln.startswith("# bs-test") and ln.split("=")[0].strip() not in self._OWN_SETTINGS]
        lines += [
            "# bs-test settings",
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.sockdir}'",
            "fsync = off",
            f"synchronous_commit = {'on' if self.durable else 'off'}",
            "full_page_writes = off",
            "max_connections = 300",
            "log_min_messages = warning",
            "log_connections = off",
        ]
        conf.write_text("\n".join(lines) + "\n")
        os.chown(conf, self.uid, self.gid)

    def start(self):
        """Start the cluster; the first start picks a free port, later starts reuse it."""
        attempts = 1 if self.port else 5
        last = None
        for _ in range(attempts):
            port = self.port or free_port()
            self._write_port(port)
            proc = self._as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.logfile,
                                      "-w", "-t", "60", "start"], timeout=90, check=False)
            if proc.returncode == 0:
                self.port = port
                return self
            last = proc.stdout + "\n" + self.log_tail()
        raise RuntimeError(f"could not start PostgreSQL:\n{last}")

    def stop(self, mode="fast"):
        self._as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"],
                          timeout=60)

    # --- streaming replication

    def make_standby(self, name="standby"):
        """A new cluster streaming from this one (pg_basebackup -R), started
        on a port of its own. The caller destroys it."""
        standby = PgCluster(name, durable=self.durable)
        try:
            standby._as_postgres([PG_BIN / "pg_basebackup", "-D", standby.data, "-h", self.sockdir,
                                  "-p", self.port, "-U", "postgres", "-R", "-X", "stream", "-c", "fast",
                                  "--no-sync"], timeout=120)
            return standby.start()
        except BaseException:
            standby.destroy()
            raise

    def follow(self, primary):
        """Start this (stopped, cleanly shut down) cluster as a standby of
        @primary: an old primary rejoining after a switchover."""
        (self.data / "standby.signal").touch()
        os.chown(self.data / "standby.signal", self.uid, self.gid)
        conf = self.data / "postgresql.auto.conf"
        lines = [ln for ln in conf.read_text().splitlines() if not ln.startswith("primary_conninfo")]
        lines.insert(0, f"primary_conninfo = 'host={primary.sockdir} port={primary.port} user=postgres'")
        conf.write_text("\n".join(lines) + "\n")
        os.chown(conf, self.uid, self.gid)
        return self.start()

    def promote(self):
        self._as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-w", "-t", "60", "promote"], timeout=90)

    def in_recovery(self):
        return self.psql("SELECT pg_is_in_recovery()").strip() == "t"

    def wait_replayed(self, primary, timeout=30):
        """Until this standby has replayed everything @primary has written."""
        lsn = primary.psql("SELECT pg_current_wal_lsn()").strip()
        wait_for(lambda: self.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn").strip() == "t",
                 timeout, message=f"{self.base.name} replaying up to {lsn}")

    def is_running(self):
        proc = self._as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "status"], check=False)
        return proc.returncode == 0

    def postmaster_pid(self):
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        """`with PgCluster(...) as pg:` a running cluster, destroyed on exit."""
        try:
            return self.init().start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc):
        self.destroy()

    def destroy(self):
        """Stop (immediate; SIGKILL by pid if that fails) and remove everything."""
        if self.data.exists() and (self.data / "postmaster.pid").exists():
            try:
                self.stop(mode="immediate")
            except Exception:
                pid = self.postmaster_pid()
                if pid:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        shutil.rmtree(self.base, ignore_errors=True)
        _LIVE_CLUSTERS.discard(self)

    # --- SQL access through psql over the unix socket

    def psql_args(self, db="postgres"):
        return [str(PSQL), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.sockdir), "-p", str(self.port), "-U", "postgres", "-d", db]

    def psql(self, sql, db="postgres", timeout=30):
        proc = subprocess.run(self.psql_args(db) + ["-c", sql], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              env=clean_pg_env())
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {sql!r}\n{proc.stderr}")
        return proc.stdout

    def psql_session(self, db):
        """A psql process reading SQL from a pipe (for holding locks)."""
        proc = subprocess.Popen(self.psql_args(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=clean_pg_env())
        _LIVE_PROCS.add(proc)
        return proc

    def new_db(self):
        name = f"books_t{next(self._db_counter)}_{uuid.uuid4().hex[:8]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def dsn_uri(self, db):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def dsn_kv(self, db):
        return f"host=127.0.0.1 port={self.port} dbname={db} user=postgres"


def clean_pg_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


# --------------------------------------------------------------------------
# The daemon


# Event loops per daemon in the tests: BOOKSTORE_TEST_THREADS, default 2.
TEST_THREADS = os.environ.get("BOOKSTORE_TEST_THREADS", "2")
_STRIP_ENV_PREFIXES = ("LISTEN_", "NOTIFY_", "WATCHDOG_", "BOOKS_", "ORDERS_", "REDIS_", "IDEMPOTENCY_",
                       "PG", "HTTP_")
_STRIP_ENV = {"PORT", "BIND_ADDRESS", "JOURNAL_STREAM", "INVOCATION_ID", "G_MESSAGES_DEBUG",
              "DATABASE_URL", "BOOKS_SERVICE_URL", "API_TOKENS_FILE", "CREDENTIALS_DIRECTORY",
              "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY"}
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|"
                          r"ThreadSanitizer")


def daemon_base_env():
    env = {k: v for k, v in os.environ.items()
           if k not in _STRIP_ENV and not k.startswith(_STRIP_ENV_PREFIXES)}
    env["G_SLICE"] = "always-malloc"  # as the units set it
    # Several event loops whatever the machine (the default is one per CPU):
    # the whole suite runs the daemons multi-threaded; a test sets 1 to see
    # the single-loop behaviour.
    env["BOOKS_THREADS"] = TEST_THREADS
    env["ORDERS_THREADS"] = TEST_THREADS
    return env


class Daemon:
    """One bookstore-books or bookstore-orders process, with stdout/stderr
    captured to files."""

    _counter = itertools.count(1)  # books-N
    _counters = {}  # other kinds: orders-N

    def __init__(self, binary, logdir, env, port, args=(), pass_fds=(), argv_prefix=(), name=None,
                 kind="books"):
        self.binary = Path(binary)
        self.kind = kind
        if name is None:
            counter = self._counter if kind == "books" else self._counters.setdefault(kind, itertools.count(1))
            name = f"{kind}-{next(counter)}"
        self.name = name
        self.logdir = Path(logdir)
        self.env = env
        self.port = port
        self.args = list(args)
        self.pass_fds = tuple(pass_fds)
        self.argv_prefix = list(argv_prefix)
        self.stderr_path = self.logdir / f"{self.name}.stderr.log"
        self.stdout_path = self.logdir / f"{self.name}.stdout.log"
        self.proc = None
        self.returncode = None

    # --- process control

    def spawn(self):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*self.argv_prefix, *daemon_wrapper(), str(self.binary), *self.args],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                pass_fds=self.pass_fds, close_fds=True,
            )
        _LIVE_PROCS.add(self.proc)
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; returns the exit status or raises AssertionError."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout}s\n{self.log_tail()}")
        _LIVE_PROCS.discard(self.proc)
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal and wait; SIGKILL if it does not exit in time (then raise)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} ignored {sig!r} for {timeout}s; killed\n{self.log_tail()}")
        self.returncode = self.proc.returncode
        _LIVE_PROCS.discard(self.proc)
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.returncode = self.proc.returncode
            _LIVE_PROCS.discard(self.proc)

    # --- readiness

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def api(self):
        return Api(self.url())

    def _check_alive(self, what):
        if not self.alive():
            raise AssertionError(f"{self.name} exited with status {self.proc.returncode} "
                                 f"while waiting for {what}\n{self.log_tail()}")

    def wait_listening(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("it to listen")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not listening on {self.port} after {timeout}s\n"
                                     f"{self.log_tail()}")
            time.sleep(0.02)

    def wait_healthy(self, timeout=HEALTH_DEADLINE):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self._check_alive("GET /health to be 200")
            try:
                last = requests.get(self.url("/health"), timeout=2)
                if last.status_code == 200:
                    return self
            except requests.RequestException as exc:
                last = exc
            if time.monotonic() > deadline:
                detail = describe(last) if isinstance(last, requests.Response) else repr(last)
                raise AssertionError(f"{self.name} not healthy after {timeout}s: {detail}\n{self.log_tail()}")
            time.sleep(0.05)

    def wait_database_healthy(self, timeout=HEALTH_DEADLINE):
        """GET /health reports services.database "healthy" (whatever the other
        dependencies say): for daemons started with a dependency down on purpose."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self._check_alive("its database to be healthy")
            try:
                last = requests.get(self.url("/health"), timeout=5)
                if last.json().get("services", {}).get("database") == "healthy":
                    return self
            except (requests.RequestException, ValueError, AttributeError) as exc:
                last = exc
            if time.monotonic() > deadline:
                detail = describe(last) if isinstance(last, requests.Response) else repr(last)
                raise AssertionError(f"{self.name}: database not healthy after {timeout}s: {detail}\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    # --- logs

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self):
        return self.stderr_text().splitlines()

    def log_records(self):
        """stderr lines that are JSON objects."""
        out = []
        for line in self.log_lines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def non_json_lines(self):
        out = []
        for line in self.log_lines():
            if not line.strip():
                continue
            try:
                if isinstance(json.loads(line), dict):
                    continue
            except ValueError:
                pass
            out.append(line)
        return out

    def access_records(self):
        return [r for r in self.log_records() if "HTTP_STATUS" in r]

    def wait_for_log(self, predicate, timeout=3, message="a log record"):
        return wait_for(lambda: [r for r in self.log_records() if predicate(r)], timeout,
                        message=f"{message} in {self.stderr_path}")

    def sanitizer_reports(self):
        return [ln for ln in self.log_lines() if SANITIZER_RE.search(ln)]

    def log_tail(self, n=20, access=4):
        """The last n stderr lines that are not access records, then the last
        few access records (enough context without drowning the message)."""
        lines = self.log_lines()
        other = [ln for ln in lines if '"HTTP_STATUS"' not in ln][-n:]
        acc = [ln for ln in lines if '"HTTP_STATUS"' in ln][-access:]
        status = "running" if self.alive() else f"exited {self.proc.returncode if self.proc else None}"
        return (f"--- {self.name} ({status}), stderr {self.stderr_path}\n--- last {len(other)} non-access lines:\n"
                + "\n".join(other) + f"\n--- last {len(acc)} access records:\n" + "\n".join(acc))


def assert_serving(daemon):
    """The daemon is alive and answers GET /livez; a crash is reported once,
    with the signal and the log tail."""
    def died():
        daemon.crash_reported = True
        rc = daemon.proc.returncode
        how = f"killed by signal {-rc} ({signal.Signals(-rc).name})" if rc is not None and rc < 0 else f"exit {rc}"
        reports = daemon.sanitizer_reports()
        san = ("\nsanitizer: " + "\n".join(reports[:10])) if reports else ""
        return f"daemon died ({how}){san}\n{daemon.log_tail(60 if reports else 20)}"

    if not daemon.alive():
        raise AssertionError(died())
    try:
        resp = requests.get(daemon.url("/livez"), timeout=5)
    except requests.RequestException as exc:
        deadline = time.monotonic() + 2
        while daemon.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not daemon.alive():
            raise AssertionError(died())
        raise AssertionError(f"daemon alive but GET /livez failed: {exc!r}\n{daemon.log_tail()}")
    assert resp.status_code == 200, f"GET /livez{describe(resp)}"


class DaemonManager:
    """Starts daemons against a cluster and cleans them all up."""

    def __init__(self, cluster, logdir):
        self.cluster = cluster
        self.logdir = Path(logdir)
        self.daemons = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def env_for(self, dsn=None, port=None, extra=None):
        env = daemon_base_env()
        if dsn is not None:
            env["BOOKS_DB_DSN"] = dsn
        if port is not None:
            env["PORT"] = str(port)
        env["BIND_ADDRESS"] = "127.0.0.1"
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def env_for_orders(self, dsn=None, books_url=None, port=None, extra=None):
        """The environment of a bookstore-orders process: DATABASE_URL and
        BOOKS_SERVICE_URL (None: unset) on top of the cleaned environment."""
        env = daemon_base_env()
        if dsn is not None:
            env["DATABASE_URL"] = dsn
        if books_url is not None:
            env["BOOKS_SERVICE_URL"] = books_url
        if port is not None:
            env["PORT"] = str(port)
        env["BIND_ADDRESS"] = "127.0.0.1"
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def spawn(self, env, port=None, args=(), pass_fds=(), argv_prefix=(), name=None, kind="books"):
        d = Daemon(daemon_binary(kind), self.logdir, env, port, args=args, pass_fds=pass_fds,
                   argv_prefix=argv_prefix, name=name, kind=kind)
        self.daemons.append(d)
        return d.spawn()

    def start(self, db=None, dsn=None, env=None, wait="healthy", port=None, name=None, argv_prefix=()):
        """Start a bookstore-books daemon on a free port (retrying if the port
        was taken meanwhile).

        db: a database name on self.cluster (a fresh one is made if neither db nor dsn);
        argv_prefix: a command the daemon runs under, e.g. ["prlimit", "--nofile=256:256"]."""
        return self._start("books", db, dsn, env, wait, port, name,
                           lambda dsn_, p: self.env_for(dsn_, p, env), argv_prefix)

    def start_orders(self, books=None, books_url=None, db=None, dsn=None, env=None, wait="healthy",
                     port=None, name=None):
        """Start a bookstore-orders daemon on a free port.

        books: the Books Daemon it talks to, or books_url ("http://127.0.0.1:P");
        db: a database name on self.cluster (a fresh one if neither db nor dsn).
        wait="healthy" needs Books up (Orders' /health checks it); use
        wait="database" (listening, and /health says the database is healthy)
        or "listening" when Books is down on purpose."""
        if books_url is None:
            if books is None:
                raise ValueError("start_orders needs books= or books_url=")
            books_url = books.url()
        d = self._start("orders", db, dsn, env, wait, port, name,
                        lambda dsn_, p: self.env_for_orders(dsn_, books_url, p, env))
        d.books_url = books_url
        return d

    def _start(self, kind, db, dsn, env, wait, port, name, make_env, argv_prefix=()):
        if dsn is None:
            if db is None:
                db = self.cluster.new_db()
            dsn = self.cluster.dsn_uri(db)
        attempts = 1 if port else 3
        for attempt in range(attempts):
            p = port or free_port()
            d = self.spawn(make_env(dsn, p), port=p, name=name, kind=kind, argv_prefix=argv_prefix)
            d.db = db
            d.dsn = dsn
            try:
                if wait in ("healthy", "listening", "database"):
                    d.wait_listening()
                if wait == "healthy":
                    d.wait_healthy()
                if wait == "database":
                    d.wait_database_healthy()
                return d
            except AssertionError:
                if d.alive() or attempt == attempts - 1:
                    raise
                # exited early: perhaps the port was taken by someone else; retry
        raise AssertionError("unreachable")

    def cleanup(self):
        """Stop every daemon still running (SIGTERM; it must exit 0) and report
        crashes and sanitizer findings not already reported by a test."""
        problems = []
        for d in self.daemons:
            if d.proc is None:
                continue
            was_alive = d.alive()
            try:
                rc = d.stop(timeout=20)
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if getattr(d, "crash_reported", False):
                continue
            reports = d.sanitizer_reports()
            if reports:
                problems.append(f"{d.name} (exit {rc}) sanitizer reports:\n" + "\n".join(reports[:20])
                                + "\n" + d.log_tail(80))
            elif was_alive and rc != 0:
                problems.append(f"{d.name} exited with status {rc} after SIGTERM at teardown\n{d.log_tail()}")
            elif not was_alive and rc is not None and rc < 0 and rc != -signal.SIGKILL:
                problems.append(f"{d.name} was killed by signal {-rc} ({signal.Signals(-rc).name}) "
                                f"during the test\n{d.log_tail()}")
        self.daemons.clear()
        if problems:
            pytest.fail("daemon teardown problems:\n" + "\n\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# systemd notify socket


class NotifySocket:
    """An AF_UNIX datagram socket collecting sd_notify messages in a thread."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bsn-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, "KEY=VALUE")
        self.cond = threading.Condition()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            now = time.monotonic()
            with self.cond:
                for line in data.decode("utf-8", "replace").split("\n"):
                    if line:
                        self.messages.append((now, line))
                self.cond.notify_all()

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [m for m in self.messages if predicate(m)]
                if hits:
                    return hits
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; got {[m for _, m in self.messages]}")
                self.cond.wait(remaining)

    def all(self):
        with self.cond:
            return list(self.messages)

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# holding a table lock from another session


class TableLock:
    """Hold `LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE` in an open transaction
    of a psql session until release()."""

    def __init__(self, cluster, db, table="books"):
        self.cluster, self.db, self.table = cluster, db, table
        self.proc = None

    def granted(self):
        out = self.cluster.psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            f"WHERE c.relname = '{self.table}' AND l.mode = 'AccessExclusiveLock' AND l.granted",
            db=self.db)
        return int(out.strip() or 0) > 0

    def acquire(self, timeout=10):
        self.proc = self.cluster.psql_session(self.db)
        self.proc.stdin.write(f"BEGIN;\nLOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE;\n")
        self.proc.stdin.flush()
        wait_for(self.granted, timeout, message=f"the lock on {self.table}")
        return self

    def waiting_backends(self):
        """Backends of this database waiting for a heavyweight lock."""
        out = self.cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'", db=self.db)
        return int(out.strip() or 0)

    def release(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("COMMIT;\n")
                self.proc.stdin.close()
                self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
        finally:
            _LIVE_PROCS.discard(self.proc)
            self.proc = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# --------------------------------------------------------------------------
# bookstore-orders helpers


ORDER_KEYS = {"id", "book_id", "book_title", "book_author", "quantity", "unit_price", "total_price",
              "status", "created_at"}


def assert_order_shape(order):
    assert isinstance(order, dict), f"order is not an object: {order!r}"
    assert set(order) == ORDER_KEYS, f"order keys {sorted(order)} != {sorted(ORDER_KEYS)}: {order!r}"
    for key in ("id", "book_id", "quantity"):
        assert isinstance(order[key], int) and not isinstance(order[key], bool) and order[key] > 0, (key, order)
    assert isinstance(order["book_title"], str), order
    assert isinstance(order["book_author"], str), order
    for key in ("unit_price", "total_price"):
        assert isinstance(order[key], (int, float)) and not isinstance(order[key], bool), (
            f"{key} must be a JSON number: {order!r}")
    assert isinstance(order["status"], str) and order["status"], order
    parse_ts(order["created_at"])


_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def raw_members(text, member):
    """The raw JSON literals of every `"member": <number>` in a response text
    (the digits exactly as the server wrote them, not parsed into floats)."""
    return re.findall(r'"' + re.escape(member) + r'"\s*:\s*(' + _NUMBER + r')\s*[,}\]\s]', text)


def raw_money(resp, member):
    """The one raw literal of a money member in a single-order response."""
    found = raw_members(resp.text, member)
    assert len(found) == 1, f"expected one raw {member} number in the body, found {found}{describe(resp)}"
    return found[0]


class OrdersApi(Api):
    """Api for bookstore-orders."""

    def create_order(self, book_id, quantity, key=None, headers=None, status=201):
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["Idempotency-Key"] = key
        resp = self.post("/v1/orders", json={"book_id": book_id, "quantity": quantity}, headers=hdrs)
        if status is not None:
            assert_status(resp, status)
            if status == 201:
                assert_order_shape(resp.json())
        return resp

    def order(self, book_id, quantity, **kw):
        """create_order, expecting 201; the order object."""
        return self.create_order(book_id, quantity, **kw).json()

    def total_count(self):
        resp = self.get("/v1/orders", params={"limit": 1})
        assert_status(resp, 200)
        assert "X-Total-Count" in resp.headers, f"no X-Total-Count{describe(resp)}"
        return int(resp.headers["X-Total-Count"])


class ServicePair:
    """A bookstore-books daemon and a bookstore-orders daemon talking to it,
    each on a database of its own.

    books_manager / orders_manager: DaemonManagers (the same one by default;
    a different one puts Orders on another cluster)."""

    def __init__(self, books_manager, orders_manager=None, books_env=None, orders_env=None,
                 books_db=None, orders_db=None):
        self.books_manager = books_manager
        self.orders_manager = orders_manager or books_manager
        self.books_env = books_env
        self.orders_env = orders_env
        self.books_db = books_db or self.books_manager.cluster.new_db()
        self.orders_db = orders_db or self.orders_manager.cluster.new_db()
        self.books = self.books_manager.start(db=self.books_db, env=books_env)
        self.orders = self.orders_manager.start_orders(books=self.books, db=self.orders_db, env=orders_env)

    @property
    def api(self):
        return OrdersApi(self.orders.url())

    @property
    def books_api(self):
        return self.books.api

    def restart_books(self, wait="healthy"):
        """A new Books process on the same port and database."""
        if self.books.alive():
            self.books.stop()
        deadline = time.monotonic() + 10
        while True:  # the port may linger a moment after a kill
            self.books = self.books_manager.start(db=self.books_db, env=self.books_env,
                                                  port=self.books.port, wait=None)
            try:
                if wait in ("healthy", "listening"):
                    self.books.wait_listening()
                if wait == "healthy":
                    self.books.wait_healthy()
                return self.books
            except AssertionError:
                if self.books.alive() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def restart_orders(self, wait="healthy", env=None):
        """A new Orders process on the same port and database."""
        if self.orders.alive():
            self.orders.stop()
        self.orders = self.orders_manager.start_orders(
            books_url=self.orders.books_url, db=self.orders_db,
            env=env if env is not None else self.orders_env, port=self.orders.port, wait=wait)
        return self.orders

    def current(self):
        """Replace whichever daemon a test killed (same port, same database)."""
        if not self.books.alive():
            self.restart_books()
        if not self.orders.alive():
            self.restart_orders()
        return self


# --------------------------------------------------------------------------
# a fake Books service


class BooksStub:
    """An HTTP server in threads standing in for bookstore-books, for the
    faults the real daemon cannot produce on demand.

    mode (changeable at any time):
      "ok"      GET /v1/books/{id} -> 200 book, GET /health -> 200
      "slow"    the same after `delay` seconds
      "hang"    accepts the connection, reads the request, never answers
      "error"   500 with a JSON error
      "garbage" 200 with a body that is not JSON
      "huge"    200 with a chunked body of `huge_bytes` (no Content-Length)
      "missing" 404 NOT_FOUND
    """

    def __init__(self, mode="ok", delay=0.0, title="Stub Book", author="Stub Author", price="12.99",
                 port=0):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.mode = mode
        self.delay = delay
        self.huge_bytes = 64 * 1024 * 1024
        self.title, self.author, self.price = title, author, price
        self.lock = threading.Lock()
        self.book_requests = []  # (monotonic time, path, X-Request-ID) of each GET /v1/books/...
        self.health_requests = 0
        self.in_flight = 0
        self.released = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                is_book = self.path.startswith("/v1/books/")
                with stub.lock:
                    if is_book:
                        stub.book_requests.append((time.monotonic(), self.path,
                                                   self.headers.get("X-Request-ID")))
                    elif self.path == "/health":
                        stub.health_requests += 1
                    stub.in_flight += 1
                try:
                    self._answer(is_book)
                finally:
                    with stub.lock:
                        stub.in_flight -= 1

            def _answer(self, is_book):
                mode = stub.mode
                if mode == "hang":
                    stub.released.wait(120)
                    self.close_connection = True
                    return
                if mode == "slow":
                    if stub.released.wait(stub.delay):
                        self.close_connection = True
                        return
                    mode = "ok"
                if mode == "error":
                    return self._send(500, {"error": "INTERNAL_ERROR", "message": "stub says no"})
                if mode == "garbage":
                    return self._send(200, b"<html>this is not json", "application/json")
                if mode == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"[" * 65536
                    try:
                        for _ in range(stub.huge_bytes // len(chunk)):
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:
                        pass  # the client gave up, as it should
                    self.close_connection = True
                    return
                if mode == "missing" and is_book:
                    return self._send(404, {"error": "NOT_FOUND", "message": "no such book"})
                if not is_book:
                    if self.path == "/health":
                        return self._send(200, {"status": "healthy", "services": {"database": "healthy"}})
                    return self._send(404, {"error": "NOT_FOUND", "message": "unknown path"})
                tail = self.path[len("/v1/books/"):]
                try:
                    book_id = int(tail)
                except ValueError:
                    return self._send(400, {"error": "VALIDATION_ERROR", "message": "bad id"})
                now = "2026-01-01T00:00:00.000000Z"
                return self._send(200, {"id": book_id, "title": stub.title, "author": stub.author,
                                        "description": None, "price": stub.price, "active": True,
                                        "created_at": now, "updated_at": now})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def book_request_count(self):
        with self.lock:
            return len(self.book_requests)

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Prometheus text


_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """-> list of (name, {labels}, float value)"""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        assert m, f"unparsable metrics line: {line!r}"
        name, labels, value = m.groups()
        samples.append((name, dict(_LABEL_RE.findall(labels or "")), float(value)))
    return samples


def metric_value(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == str(w) for k, w in labels.items())]
    return sum(vals) if vals else 0.0


def scrape(daemon):
    resp = requests.get(daemon.url("/metrics"), timeout=DEFAULT_TIMEOUT)
    assert_status(resp, 200)
    return parse_metrics(resp.text)


def _request_counts(samples):
    return sorted((tuple(sorted(l.items())), v) for n, l, v in samples
                  if n == "http_requests_total" and l.get("handler") != "/metrics")


def scrape_settled(daemon, timeout=None):
    """-> the text of a /metrics scrape that counts every request whose
    response the test has already read.

    A request is counted when libsoup reports it finished, just after its last
    byte went to the kernel; with several event loops the scrape can be served
    by another loop in that instant and miss it. Scrape until two scrapes in a
    row agree on every request counter but the scrapes' own."""
    deadline = time.monotonic() + (timeout or scaled(5))
    resp = requests.get(daemon.url("/metrics"), timeout=DEFAULT_TIMEOUT)
    assert_status(resp, 200)
    while True:
        time.sleep(0.01)
        again = requests.get(daemon.url("/metrics"), timeout=DEFAULT_TIMEOUT)
        assert_status(again, 200)
        if (_request_counts(parse_metrics(again.text)) == _request_counts(parse_metrics(resp.text))
                or time.monotonic() > deadline):
            return again.text
        resp = again
