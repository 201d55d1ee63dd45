"""A throwaway redis-server for tests: free loopback port, temp dir, real
process that tests can stop, kill, freeze and restart on the same port."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from harness import free_port, wait_for

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
_LIVE = set()


class RedisServer:
    def __init__(self, name="redis", password=None):
        if not Path(REDIS_SERVER).exists():
            pytest.fail("redis-server not found (apt-get install redis-server)", pytrace=False)
        self.base = Path(tempfile.mkdtemp(prefix=f"bs-{name}-"))
        self.password = password
        self.port = None
        self.proc = None
        _LIVE.add(self)

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
                return self
        raise RuntimeError(f"could not start redis-server:\n{self.log_tail()}")

    def _ping(self, port):
        try:
            return redis.Redis(host="127.0.0.1", port=port, password=self.password,
                               socket_timeout=0.5, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           decode_responses=True, socket_timeout=10, **kw)

    def env(self):
        """The daemons' variables for this server."""
        env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port)}
        if self.password:
            env["REDIS_PASSWORD"] = self.password
        return env

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
