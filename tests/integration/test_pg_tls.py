"""PostgreSQL over TLS with sslmode=verify-full, through our non-blocking
connect (PQconnectPoll on the event loop): a server that only accepts TLS,
a CA the daemon is given, and the name in the DSN checked against the
certificate. A wrong CA or a wrong name leaves the database unhealthy,
never a crash or a plain-text fallback."""

import shutil
import os

import pytest
import requests

from harness import PgCluster, assert_status, scaled, wait_for
from test_tls import Pki


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory):
    """A cluster that refuses connections without TLS."""
    pki = Pki(tmp_path_factory.mktemp("pg-pki"))
    cert, key = pki.issue("pg", sans=("DNS:localhost",))
    cluster = PgCluster("tls").init()
    try:
        for src, name in ((cert, "server.crt"), (key, "server.key")):
            dest = cluster.data / name
            shutil.copy(src, dest)
            os.chown(dest, cluster.uid, cluster.gid)
            os.chmod(dest, 0o600)
        with open(cluster.data / "postgresql.conf", "a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                       "ssl_min_protocol_version = 'TLSv1.2'\n")
        hba = cluster.data / "pg_hba.conf"
        hba.write_text("local all all trust\nhostnossl all all 0.0.0.0/0 reject\n"
                       "hostssl all all 127.0.0.1/32 trust\n")
        cluster.start()
        cluster.pki = pki
        yield cluster
    finally:
        cluster.destroy()


def dsn(cluster, db, ca, host="localhost"):
    # hostaddr: connect without a name lookup; host: the name checked
    return (f"host={host} hostaddr=127.0.0.1 port={cluster.port} dbname={db} user=postgres "
            f"sslmode=verify-full sslrootcert={ca}")


def test_books_over_verified_tls(daemons, tls_pg):
    db = tls_pg.new_db()
    d = daemons.start(dsn=dsn(tls_pg, db, tls_pg.pki.ca), db=db)
    book = d.api.create_book(title="Stored over TLS")
    resp = requests.get(d.url(f"/v1/books/{book['id']}"), timeout=scaled(10))
    assert_status(resp, 200)
    assert resp.json()["title"] == "Stored over TLS"
    count = tls_pg.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                        f"WHERE s.ssl AND a.datname = '{db}'", db="postgres")
    assert int(count) >= 1, "the daemon's connections use TLS"


@pytest.mark.parametrize("case", ["wrong CA", "wrong name", "no TLS"])
def test_books_refuses_an_unverified_database(daemons, tls_pg, case):
    db = tls_pg.new_db()
    if case == "wrong CA":
        other = Pki(tls_pg.pki.path.parent / "pg-other", ca_name="Someone else")
        value = dsn(tls_pg, db, other.ca)
    elif case == "wrong name":
        value = dsn(tls_pg, db, tls_pg.pki.ca, host="db.example")
    else:
        value = f"host=127.0.0.1 port={tls_pg.port} dbname={db} user=postgres sslmode=disable"
    d = daemons.start(dsn=value, db=db, wait="listening")
    wait_for(lambda: requests.get(d.url("/health"), timeout=5).status_code == 503, scaled(10),
             message="/health 503 with the database unreachable")
    resp = requests.get(d.url("/v1/books"), timeout=scaled(10))
    assert resp.status_code == 503, resp.text
    assert d.alive()
