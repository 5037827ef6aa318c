import threading

import psycopg

from store.migrate import available_migrations
from store.migrate import migrate
from tests.support.servers import Servers


def test_migrating_an_up_to_date_database_applies_nothing(database_url: str) -> None:
    assert migrate(database_url) == []


def test_two_processes_migrating_at_once_apply_each_migration_exactly_once(
    servers: Servers,
) -> None:
    servers.postgres.ensure_database("paystream_migrate_race")
    url = servers.postgres.url("paystream_migrate_race")
    applied: list[list[str]] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        applied.append(migrate(url))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [migration.name for migration in available_migrations()]
    assert sorted(applied, key=len) == [[], names]
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert count == (len(names),)


def test_upgrading_takes_the_operators_role_from_merchant_keys_and_leaves_their_ledger(
    servers: Servers,
) -> None:
    """Migration 0008: a merchant key that held `reconciliation` before operators
    existed keeps reading its own ledger (`ledger:read`) and nothing more."""
    name = "paystream_upgrade_0008"
    servers.postgres.ensure_database(name)
    url = servers.postgres.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        for migration in available_migrations():
            if migration.version < 8:
                conn.execute(migration.sql.encode())
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO schema_migrations (version, name) SELECT v, 'before' FROM"
            " generate_series(1, 7) v"
        )
        conn.execute("INSERT INTO merchants (id, name) VALUES ('mer_old', 'Old')")
        for key_id, roles in (
            ("key_recon", ["payments:read", "reconciliation"]),
            ("key_only", ["reconciliation"]),
            ("key_both", ["reconciliation", "ledger:read"]),
            ("key_plain", ["admin", "audit:read"]),
        ):
            conn.execute(
                "INSERT INTO api_keys (id, merchant_id, key_hash, key_prefix, roles)"
                " VALUES (%s, 'mer_old', %s, 'sk_x', %s)",
                (key_id, key_id.encode(), roles),
            )
    assert migrate(url)[0].startswith("0008_")
    with psycopg.connect(url) as conn:
        roles = dict(conn.execute("SELECT id, roles FROM api_keys").fetchall())
    assert roles == {
        "key_recon": ["ledger:read", "payments:read"],
        "key_only": ["ledger:read"],
        "key_both": ["ledger:read"],
        "key_plain": ["admin", "audit:read"],
    }
