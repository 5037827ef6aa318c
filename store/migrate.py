"""Plain numbered SQL migrations, applied in order, each in its own transaction.

`schema_migrations` records what ran. An advisory lock lets several processes
run `migrate` at once (compose starts them together) without racing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from store.db import connect
from store.statements import Steps
from store.statements import execute
from store.statements import fetch_values
from store.statements import in_transaction
from store.statements import store_function

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant shared by every paystream process; pg_advisory_lock takes a bigint.
_MIGRATION_LOCK = 0x7061797374726561


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda migration: migration.version)


def migrate(database_url: str) -> list[str]:
    """Apply every migration not applied yet; return the names applied."""
    with connect(database_url, autocommit=True) as conn:
        return _apply_missing(conn)


@store_function
def _apply_missing() -> Steps[list[str]]:
    yield from execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        yield from execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = set((yield from fetch_values("SELECT version FROM schema_migrations")))
        applied_now = []
        for migration in available_migrations():
            if migration.version not in done:
                yield from in_transaction(_apply(migration))
                applied_now.append(migration.name)
        return applied_now
    finally:
        yield from execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def _apply(migration: Migration) -> Steps[None]:
    # Bytes: sent as they are, every statement of the file in one round trip.
    yield from execute(migration.sql.encode())
    yield from execute(
        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
        (migration.version, migration.name),
    )
