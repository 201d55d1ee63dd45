"""Migrations: applied once under an advisory lock, safe with instances
starting together, not re-applied on restart."""

import signal
from pathlib import Path

from harness import REPO_ROOT, assert_status, free_port

SQL_DIR = REPO_ROOT / "data" / "sql" / "books"


def migration_rows(pg, db):
    out = pg.psql("SELECT version, applied_at FROM schema_migrations ORDER BY version", db=db)
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def expected_versions():
    return sorted(p.stem for p in Path(SQL_DIR).glob("*.sql"))


def test_fresh_database_gets_schema(daemons, pg):
    db = pg.new_db()
    d = daemons.start(db=db)
    rows = migration_rows(pg, db)
    versions = [v for v, _ in rows]
    assert versions, "schema_migrations is empty after startup"
    assert len(versions) == len(set(versions))
    if expected_versions():
        assert versions == expected_versions(), (versions, expected_versions())
    tables = pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", db=db).split()
    assert "books" in tables and "schema_migrations" in tables, tables
    # the table enforces the seed's constraints itself, whatever the API does
    cols = pg.psql("SELECT column_name || ':' || data_type FROM information_schema.columns "
                   "WHERE table_name = 'books' ORDER BY ordinal_position", db=db).split("\n")
    colmap = dict(c.split(":", 1) for c in cols if c)
    assert colmap.get("price") == "numeric", colmap
    assert {"id", "title", "author", "description", "price", "active", "created_at", "updated_at"} <= set(colmap)
    assert_status(d.api.get("/v1/books"), 200)


def test_two_daemons_starting_together(daemons, pg):
    db = pg.new_db()
    a_env = daemons.env_for(pg.dsn_uri(db), None)
    # spawn both before waiting for either
    pa, pb = free_port(), free_port()
    a = daemons.spawn({**a_env, "PORT": str(pa)}, port=pa)
    b = daemons.spawn({**a_env, "PORT": str(pb)}, port=pb)
    a.wait_healthy()
    b.wait_healthy()
    rows = migration_rows(pg, db)
    versions = [v for v, _ in rows]
    assert versions and len(versions) == len(set(versions)), rows
    if expected_versions():
        assert versions == expected_versions()
    # both serve the same data
    book = a.api.create_book(title="from a")
    got = b.api.get(f"/v1/books/{book['id']}")
    assert_status(got, 200)
    assert got.json() == book
    book_b = b.api.create_book(title="from b")
    assert_status(a.api.get(f"/v1/books/{book_b['id']}"), 200)


def test_many_daemons_starting_together(daemons, pg):
    db = pg.new_db()
    ds = []
    for _ in range(4):
        p = free_port()
        ds.append(daemons.spawn(daemons.env_for(pg.dsn_uri(db), p), port=p))
    for d in ds:
        d.wait_healthy()
    versions = [v for v, _ in migration_rows(pg, db)]
    assert versions and len(versions) == len(set(versions))


def test_restart_does_not_reapply(daemons, pg):
    db = pg.new_db()
    d = daemons.start(db=db)
    book = d.api.create_book(title="persisted")
    before = migration_rows(pg, db)
    assert d.stop(signal.SIGTERM, timeout=15) == 0, d.log_tail()

    d2 = daemons.start(db=db)
    after = migration_rows(pg, db)
    assert after == before, "a restart must not re-apply (or re-record) migrations"
    got = d2.api.get(f"/v1/books/{book['id']}")
    assert_status(got, 200)
    assert got.json() == book


def _runtime_role(pg, db, role):
    """A login role that may only read and write the data (what a packaged
    install gives the daemon): no CREATE anywhere, owns nothing."""
    pg.psql(f'CREATE ROLE "{role}" LOGIN')
    pg.psql(f'GRANT CONNECT ON DATABASE "{db}" TO "{role}"')
    pg.psql(f'GRANT USAGE ON SCHEMA public TO "{role}"; '
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"; '
            f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"', db=db)
    pg.psql('REVOKE CREATE ON SCHEMA public FROM PUBLIC', db=db)
    return f"postgresql://{role}@127.0.0.1:{pg.port}/{db}"


def test_up_to_date_schema_needs_no_ddl_privilege(daemons, pg):
    """Once the owner has migrated, a runtime role without CREATE serves."""
    db = pg.new_db()
    owner = daemons.start(db=db)
    owner.stop()
    dsn = _runtime_role(pg, db, f"rt_{db}")
    d = daemons.start(dsn=dsn)
    created = d.api.create_book(title="Least", author="Privilege", price="1.00")
    assert created["title"] == "Least"
    assert pg.psql("SELECT count(*) FROM schema_migrations", db=db).strip() == str(len(expected_versions()))


def test_runtime_role_cannot_migrate(daemons, pg):
    """On an empty database the runtime role cannot create the schema: the
    daemon stays up, unhealthy, says why, and creates nothing."""
    db = pg.new_db()
    dsn = _runtime_role(pg, db, f"rt_{db}")
    d = daemons.start(dsn=dsn, wait="listening")
    d.wait_for_log(lambda r: "permission denied" in r.get("MESSAGE", ""), timeout=10,
                   message="a migration failure naming the missing privilege")
    assert_status(d.api.get("/health"), 503)
    tables = pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db=db).split()
    assert tables == [], tables
