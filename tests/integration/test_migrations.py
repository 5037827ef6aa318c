import threading

import psycopg

from store.migrate import available_migrations, migrate
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
