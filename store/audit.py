"""The audit log: appended in the transaction of every change, hash-chained,
and verified.

Who acted comes from the session: `as_actor` sets `paystream.actor` (a key id,
or `system:<role>`) and `paystream.request_id` for the transaction, and every
audit row written in it carries them. Rows are hashed at insert (a trigger);
the sealer chains them in seq order into `audit_seals` (each seal over the
previous seal's hash, the seq and the row's hash), and `verify` recomputes
everything and names each row that was edited, deleted, moved or slipped in.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from store.db import connection, sync_connection

_GENESIS = bytes(32)
_SET_ACTOR = (
    "SELECT set_config('paystream.actor', %s, true), set_config('paystream.request_id', %s, true)"
)
_INSERT = (
    "INSERT INTO audit_log (merchant_id, action, object_type, object_id, before, after)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)
# Sealing waits for in-flight writers; never long enough to hold payments up.
_SEAL_LOCK_TIMEOUT = "200ms"
_SEAL_LOCK_ID = 0x61756469745F7365  # any constant shared by every sealer


def system(role: str) -> str:
    return f"system:{role}"


# --- writing -------------------------------------------------------------------


def as_actor(conn: Connection[Any], actor: str, request_id: str | None = None) -> None:
    """Who acts in the current transaction (call inside one)."""
    conn.execute(_SET_ACTOR, (actor, request_id or ""))


async def as_actor_async(
    conn: AsyncConnection[Any], actor: str, request_id: str | None = None
) -> None:
    await conn.execute(_SET_ACTOR, (actor, request_id or ""))


@contextmanager
def acting(pool: ConnectionPool[Any], actor: str) -> Iterator[Connection[Any]]:
    """A transaction whose changes are audited as `actor`."""
    with sync_connection(pool) as conn, conn.transaction():
        as_actor(conn, actor)
        yield conn


@asynccontextmanager
async def acting_async(
    pool: AsyncConnectionPool[Any], actor: str, request_id: str | None = None
) -> AsyncIterator[AsyncConnection[Any]]:
    async with connection(pool) as conn, conn.transaction():
        await as_actor_async(conn, actor, request_id)
        yield conn


def _params(
    merchant_id: str | None,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[Any, ...]:
    return (
        merchant_id,
        action,
        object_type,
        object_id,
        Jsonb(before) if before is not None else None,
        Jsonb(after) if after is not None else None,
    )


def record(
    conn: Connection[Any],
    *,
    merchant_id: str | None,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    conn.execute(_INSERT, _params(merchant_id, action, object_type, object_id, before, after))


async def record_async(
    conn: AsyncConnection[Any],
    *,
    merchant_id: str | None,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await conn.execute(_INSERT, _params(merchant_id, action, object_type, object_id, before, after))


# --- reading ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    occurred_at: datetime
    actor: str
    request_id: str | None
    merchant_id: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def list_audit(
    conn: AsyncConnection[Any],
    merchant_id: str,
    *,
    object_id: str | None,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    starting_after: int | None,
) -> list[AuditRow]:
    async with conn.cursor(row_factory=class_row(AuditRow)) as cursor:
        await cursor.execute(
            "SELECT seq, occurred_at, actor, request_id, merchant_id, action, object_type,"
            " object_id, before, after FROM audit_log WHERE merchant_id = %(merchant)s"
            " AND (%(object)s::text IS NULL OR object_id = %(object)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
            " AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR occurred_at < %(until)s)"
            " AND (%(after)s::bigint IS NULL OR seq < %(after)s)"
            " ORDER BY seq DESC LIMIT %(limit)s",
            {
                "merchant": merchant_id,
                "object": object_id,
                "action": action,
                "actor": actor,
                "since": since,
                "until": until,
                "after": starting_after,
                "limit": limit,
            },
        )
        return await cursor.fetchall()


# --- the chain -------------------------------------------------------------------


def chain_hash(prev: bytes, seq: int, content_hash: bytes | None) -> bytes:
    body = content_hash if content_hash is not None else b"gap"
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + body).digest()


def seal(conn: Connection[Any], batch: int = 10_000) -> int:
    """Chain every row up to the last one no open transaction can still add
    below; returns how many seqs were sealed. Safe to run anywhere, any time."""
    top = _settled_top(conn)
    if top is None:
        return 0
    with conn.transaction():
        got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_SEAL_LOCK_ID,)).fetchone()
        if not got or not got[0]:
            return 0  # another sealer is at it
        last = conn.execute(
            "SELECT seq, hash FROM audit_seals ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        sealed_to, prev = (int(last[0]), bytes(last[1])) if last else (0, _GENESIS)
        total = 0
        while sealed_to < top:
            upto = min(top, sealed_to + batch)
            rows = dict(
                conn.execute(
                    "SELECT seq, content_hash FROM audit_log WHERE seq > %s AND seq <= %s",
                    (sealed_to, upto),
                ).fetchall()
            )
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY audit_seals (seq, gap, content_hash, prev_hash, hash) FROM STDIN"
                ) as copy,
            ):
                for seq in range(sealed_to + 1, upto + 1):
                    content = bytes(rows[seq]) if seq in rows else None
                    hash_ = chain_hash(prev, seq, content)
                    copy.write_row((seq, content is None, content, prev, hash_))
                    prev = hash_
            total += upto - sealed_to
            sealed_to = upto
        return total


def _settled_top(conn: Connection[Any]) -> int | None:
    """The highest seq below which no open transaction can still add a row:
    taking a SHARE lock waits out every transaction that wrote audit rows.
    None when one holds on too long (then seal next time)."""
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{_SEAL_LOCK_TIMEOUT}'")
            conn.execute("LOCK TABLE audit_log IN SHARE MODE")
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()
    except psycopg.errors.LockNotAvailable:
        return None
    return int(row[0]) if row else 0


@dataclass
class AuditVerdict:
    sealed: int = 0
    unsealed: int = 0
    head: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(conn: Connection[Any], limit: int = 50) -> AuditVerdict:
    """Recompute every row's hash and the whole chain; name what is wrong."""
    verdict = AuditVerdict()
    by_hash: dict[bytes, int] = {}
    prev = _GENESIS
    mismatched: list[tuple[int, bytes | None]] = []
    with conn.transaction(), conn.cursor(name="audit_verify") as cursor:
        cursor.itersize = 10_000
        cursor.execute(
            "SELECT s.seq, s.gap, s.content_hash, s.prev_hash, s.hash, a.seq IS NOT NULL,"
            " audit_content_hash(a) FROM audit_seals s LEFT JOIN audit_log a ON a.seq = s.seq"
            " ORDER BY s.seq"
        )
        for seq, gap, sealed_content, sealed_prev, sealed_hash, present, actual in cursor:
            verdict.sealed += 1
            sealed_content = bytes(sealed_content) if sealed_content is not None else None
            actual = bytes(actual) if actual is not None else None
            if bytes(sealed_prev) != prev or bytes(sealed_hash) != chain_hash(
                prev, seq, sealed_content
            ):
                verdict.problems.append(f"seq {seq}: the chain of seals is broken here")
            prev = bytes(sealed_hash)
            if sealed_content is not None:
                by_hash[sealed_content] = seq
            if gap and present:
                verdict.problems.append(
                    f"seq {seq}: a row appeared where none was sealed (inserted)"
                )
            elif not gap and not present:
                verdict.problems.append(f"seq {seq}: the row was deleted")
            elif not gap and actual != sealed_content:
                mismatched.append((seq, actual))
    for seq, actual in mismatched:
        moved_from = by_hash.get(actual) if actual is not None else None
        if moved_from is not None and moved_from != seq:
            verdict.problems.append(
                f"seq {seq}: holds the row sealed at seq {moved_from} (reordered)"
            )
        else:
            verdict.problems.append(f"seq {seq}: the row was edited after it was sealed")
    verdict.head = prev.hex()
    unsealed = conn.execute(
        "SELECT count(*) FROM audit_log WHERE seq > coalesce((SELECT max(seq) FROM audit_seals), 0)"
    ).fetchone()
    verdict.unsealed = int(unsealed[0]) if unsealed else 0
    del verdict.problems[limit:]
    return verdict
