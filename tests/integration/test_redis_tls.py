"""Redis over TLS through a stunnel4 client tunnel (docs/configuration.md, "HTTPS"):
Debian 12's hiredis 0.14 has no TLS, so Orders talks plain RESP to a local
stunnel, which verifies the Redis server's certificate (chain and name) and
carries the bytes over TLS 1.2+ to Redis's tls-port. The test proves the
order events travel that way, and that a tunnel that cannot verify the
server leaves Redis unhealthy."""

import shutil
import socket
import subprocess

import pytest
import requests

from harness import ServicePair, assert_status, free_port, scaled, wait_for
from redis_server import RedisServer
from test_tls import Pki

EVENTS = "bookstore:orders:events"

pytestmark = pytest.mark.skipif(shutil.which("stunnel4") is None and shutil.which("stunnel") is None,
                                reason="stunnel4 is installed by ./dev.sh deps")


class TlsRedis(RedisServer):
    """The harness's Redis (ACL users, the plain port for the test's own
    clients) with a TLS port as well."""

    def __init__(self, pki):
        self.cert, self.key = pki.issue("redis", sans=("DNS:localhost",))
        self.ca = pki.ca
        self.tls_port = free_port()
        super().__init__("redis-tls", extra_args=[
            "--tls-port", self.tls_port, "--tls-cert-file", self.cert, "--tls-key-file", self.key,
            "--tls-ca-cert-file", self.ca, "--tls-auth-clients", "no",
            "--tls-protocols", "TLSv1.2 TLSv1.3"])


class Tunnel:
    """stunnel4 in client mode: plain on 127.0.0.1:port, TLS to Redis."""

    def __init__(self, tmp_path, redis_srv, ca, check_host="localhost"):
        self.port = free_port()
        conf = tmp_path / "stunnel.conf"
        conf.write_text(f"""foreground = yes
pid =
output = {tmp_path / 'stunnel.log'}
[redis]
client = yes
accept = 127.0.0.1:{self.port}
connect = 127.0.0.1:{redis_srv.tls_port}
verifyChain = yes
CAfile = {ca}
checkHost = {check_host}
sslVersionMin = TLSv1.2
""")
        binary = shutil.which("stunnel4") or shutil.which("stunnel")
        self.proc = subprocess.Popen([binary, str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._listening(), scaled(10), message="stunnel listening")

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path / "pki")


@pytest.fixture
def tls_redis(pki):
    with TlsRedis(pki) as server:
        yield server


def orders_clients(redis_srv):
    return [c for c in redis_srv.client().client_list() if c.get("user") == "bookstore-orders"]


def test_order_events_travel_through_the_tunnel(tls_redis, odaemons, tmp_path):
    tunnel = Tunnel(tmp_path, tls_redis, tls_redis.ca)
    try:
        env = {**tls_redis.env("orders"), "REDIS_PORT": str(tunnel.port),
               "ORDERS_RELAY_INTERVAL_MS": "200"}
        pair = ServicePair(odaemons, orders_env=env)
        book = pair.books_api.create_book(title="Sent over TLS", price="3.00")
        resp = requests.post(pair.orders.url("/v1/orders"), timeout=scaled(10),
                             json={"book_id": book["id"], "quantity": 1})
        assert_status(resp, 201)
        r = tls_redis.client()
        wait_for(lambda: any(f.get("order_id") == str(resp.json()["id"])
                             for _, f in r.xrange(EVENTS, "-", "+")),
                 scaled(15), message="the order's event in Redis")
        clients = orders_clients(tls_redis)
        assert clients, "Orders is connected"
        # every connection of Orders' user came in on the TLS port
        assert {c["laddr"].rsplit(":", 1)[1] for c in clients} == {str(tls_redis.tls_port)}, clients
        health = requests.get(pair.orders.url("/health"), timeout=10).json()
        assert health["services"]["redis"] == "healthy", health
    finally:
        tunnel.close()


def test_a_tunnel_that_cannot_verify_redis_leaves_it_unhealthy(tls_redis, odaemons, tmp_path):
    """The certificate is for localhost; the tunnel expects redis.example."""
    tunnel = Tunnel(tmp_path, tls_redis, tls_redis.ca, check_host="redis.example")
    try:
        env = {**tls_redis.env("orders"), "REDIS_PORT": str(tunnel.port)}
        pair = ServicePair(odaemons, orders_env=env)
        pair.orders.wait_for_log(lambda r: "Redis" in r.get("MESSAGE", "")
                                 and "unavailable" in r.get("MESSAGE", ""), scaled(10),
                                 message="Redis unavailable through the tunnel")
        wait_for(lambda: "checkHost" in (tmp_path / "stunnel.log").read_text(errors="replace")
                 or "verify" in (tmp_path / "stunnel.log").read_text(errors="replace").lower(),
                 scaled(10), message="stunnel refusing the certificate")
        health = requests.get(pair.orders.url("/health"), timeout=10).json()
        assert health["services"]["redis"] != "healthy", health
        assert orders_clients(tls_redis) == []
    finally:
        tunnel.close()
