"""A throwaway redis-server for tests: free loopback port, temp dir, real
process that tests can stop, kill, freeze and restart on the same port.

It runs as the packages set Redis up: data/bookstore-setup-redis gives
bookstore-orders, bookstore-worker and bookstore-enqueue their ACL users and
turns `default` off, so the daemons log in with REDIS_USERNAME and a password
file (env(program)) and anything they send beyond their rules fails the
tests. The users live in an ACL file that restarts load again. Tests talk
to it as an administrator user of their own (client())."""

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from harness import REPO_ROOT, free_port, wait_for

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SETUP_REDIS = REPO_ROOT / "data" / "bookstore-setup-redis"
PROGRAMS = ("orders", "worker", "enqueue")
ADMIN_USER = "bookstore-test-admin"
ADMIN_PASSWORD = "test-admin-" + os.urandom(8).hex()
_LIVE = set()
_CREDENTIALS = []


def credentials_dir():
    """One directory of password files for the whole session (the setup
    command keeps the passwords it finds, as on a real host)."""
    if not _CREDENTIALS:
        path = Path(tempfile.mkdtemp(prefix="bs-redis-credentials-"))
        atexit.register(shutil.rmtree, path, True)
        # made now, not by the first setup, for daemons started before Redis
        (path / "redis").mkdir(mode=0o700)
        for program in PROGRAMS:
            secret = path / "redis" / f"{program}.password"
            secret.write_text(os.urandom(32).hex() + "\n")
            secret.chmod(0o600)
        _CREDENTIALS.append(path / "redis")
    return _CREDENTIALS[0]


def password_file(program):
    return credentials_dir() / f"{program}.password"


def setup_redis(port, *args, env=None):
    """Run data/bookstore-setup-redis against 127.0.0.1:port as the test
    administrator; the CompletedProcess."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("REDIS")}
    e.update({"BOOKSTORE_REDIS_CREDENTIALS": str(credentials_dir()), "REDISCLI_AUTH": ADMIN_PASSWORD})
    e.update(env or {})
    return subprocess.run(["sh", str(SETUP_REDIS), "--port", str(port), "--admin-user", ADMIN_USER,
                           *args], env=e, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


class RedisServer:
    def __init__(self, name="redis", password=None, extra_args=(), extra_acl=()):
        """password: the old way, `requirepass` for the default user and
        REDIS_PASSWORD for the daemons (no ACL users). extra_args: more
        redis-server options (a TLS port, say). extra_acl: more lines of the
        ACL file (the users of replication and Sentinel)."""
        self.extra_args = [str(a) for a in extra_args]
        if not Path(REDIS_SERVER).exists():
            pytest.fail("redis-server not found (apt-get install redis-server)", pytrace=False)
        self.base = Path(tempfile.mkdtemp(prefix=f"bs-{name}-"))
        self.password = password
        self.port = None
        self.proc = None
        self.acl = password is None
        if self.acl:
            self.aclfile.write_text(f"user default on nopass ~* &* +@all\n"
                                    f"user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n"
                                    + "".join(f"{line}\n" for line in extra_acl))
        _LIVE.add(self)

    @property
    def aclfile(self):
        return self.base / "users.acl"

    @property
    def logfile(self):
        return self.base / "redis.log"

    def log_tail(self, n=30):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _spawn(self, port):
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", str(self.base),
                "--logfile", str(self.logfile), "--protected-mode", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.acl:
            args += ["--aclfile", str(self.aclfile)]
        args += self.extra_args
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def start(self):
        """Start; the first start picks a free port, later starts reuse it.
        Data does not survive a stop (no persistence), like a fresh Redis."""
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            port = self.port or free_port()
            self.proc = self._spawn(port)
            try:
                wait_for(lambda: self.proc.poll() is not None or self._ping(port), 10,
                         message="redis-server to answer PING")
            except AssertionError:
                self.proc.kill()
                raise
            if self.proc.poll() is None:
                self.port = port
                if self.acl and "bookstore-orders" not in self.aclfile.read_text():
                    self._setup_users()
                return self
        raise RuntimeError(f"could not start redis-server:\n{self.log_tail()}")

    def _setup_users(self):
        done = setup_redis(self.port, "--disable-default", "--no-systemd")
        if done.returncode != 0:
            raise RuntimeError(f"bookstore-setup-redis failed:\n{done.stdout}{done.stderr}")

    def _credentials(self):
        if self.acl:
            return {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
        return {"password": self.password}

    def _ping(self, port):
        try:
            return redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5,
                               socket_connect_timeout=0.5, **self._credentials()).ping()
        except redis.RedisError:
            return False

    def client(self, **kw):
        """A client with every right (the test administrator)."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                           socket_timeout=10, **{**self._credentials(), **kw})

    def client_as(self, program, **kw):
        """A client that logs in as `program`'s user, with the password its
        daemon reads."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                           socket_timeout=10, username=f"bookstore-{program}",
                           password=password_file(program).read_text().strip(), **kw)

    def env(self, program):
        """The variables of `program` ("orders", "worker" or "enqueue") for
        this server: its own user, the password in a file."""
        if program not in PROGRAMS:
            raise ValueError(f"env(): program must be one of {PROGRAMS}, not {program!r}")
        env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port)}
        if self.password:
            env["REDIS_PASSWORD"] = self.password
        elif self.acl:
            env["REDIS_USERNAME"] = f"bookstore-{program}"
            env["REDIS_PASSWORD_FILE"] = str(password_file(program))
        return env

    def acl_denials(self):
        """What a user was refused (ACL LOG entries of a command, key or
        channel; not failed logins), newest first."""
        if not (self.acl and self.is_running()):
            return []
        return [e for e in self.client().acl_log() if e.get("reason") != "auth"]

    def assert_no_denials(self):
        """Fail when a daemon sent something its user may not: the rules
        of bookstore-setup-redis miss a command or key it uses."""
        denials = self.acl_denials()
        assert not denials, f"Redis ACL refused: {denials}"

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if not self.is_running():
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen server cannot exit
        self.proc.send_signal(sig)
        self.proc.wait(timeout)

    def kill(self):
        self.stop(signal.SIGKILL)

    def freeze(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self):
        self.stop()
        time.sleep(0.05)
        return self.start()

    def destroy(self):
        try:
            if self.is_running():
                self.kill()
        except Exception:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc):
        self.destroy()


def destroy_all():
    for server in list(_LIVE):
        server.destroy()
