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
from collections.abc import AsyncIterator
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from contextlib import AbstractContextManager
from contextlib import asynccontextmanager
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import overload

import psycopg
from psycopg import AsyncConnection
from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from psycopg_pool import ConnectionPool

from store.db import connect
from store.db import connection
from store.statements import Backlog
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import copy_rows
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_backlog
from store.statements import fetch_one
from store.statements import fetch_tuples
from store.statements import fetch_value
from store.statements import in_transaction
from store.statements import store_function
from store.transactions import transaction_as

_GENESIS = bytes(32)
# Sealing waits for in-flight writers; never long enough to hold payments up.
_SEAL_LOCK_TIMEOUT = "200ms"
_SEAL_LOCK_ID = 0x61756469745F7365  # any constant shared by every sealer
# Rows of the chain read per round trip while verifying.
_VERIFY_FETCH = 10_000


def system(role: str) -> str:
    return f"system:{role}"


# --- writing -------------------------------------------------------------------


@store_function
def as_actor(actor: str, request_id: str | None = None) -> Statement[int]:
    """Who acts in the current transaction (call inside one)."""
    return execute(
        "SELECT set_config('paystream.actor', %s, true),"
        " set_config('paystream.request_id', %s, true)",
        (actor, request_id or ""),
    )


@overload
def acting(
    pool: ConnectionPool[Any], actor: str, request_id: str | None = None
) -> AbstractContextManager[Connection[Any]]: ...


@overload
def acting(
    pool: AsyncConnectionPool[Any], actor: str, request_id: str | None = None
) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...


def acting(
    pool: ConnectionPool[Any] | AsyncConnectionPool[Any], actor: str, request_id: str | None = None
) -> AbstractContextManager[Connection[Any]] | AbstractAsyncContextManager[AsyncConnection[Any]]:
    """A pooled connection in a transaction whose changes are audited as
    `actor` (`transaction_as`): `with` on the actors' pool, `async with` on
    the gateway's."""
    if isinstance(pool, AsyncConnectionPool):
        return _acting_async(pool, actor, request_id)
    return _acting(pool, actor, request_id)


@contextmanager
def _acting(
    pool: ConnectionPool[Any], actor: str, request_id: str | None
) -> Iterator[Connection[Any]]:
    with connection(pool) as conn, transaction_as(conn, actor, request_id):
        yield conn


@asynccontextmanager
async def _acting_async(
    pool: AsyncConnectionPool[Any], actor: str, request_id: str | None
) -> AsyncIterator[AsyncConnection[Any]]:
    async with connection(pool) as conn, transaction_as(conn, actor, request_id):
        yield conn


@contextmanager
def acting_alone(database_url: str, actor: str) -> Iterator[Connection[Any]]:
    """A transaction on a connection of its own (a command-line run has no
    pool), audited as `actor`: committed when the block ends well."""
    with connect(database_url) as conn:
        as_actor(conn, actor)
        yield conn


@store_function
def record(
    *,
    merchant_id: str | None,
    action: str,
    object_id: str,
    object_type: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Statement[int]:
    """An audit row. An action names the type of its object and what befell
    it (`webhook_delivery.replayed`): the object type is the action's first
    part unless given."""
    object_type = object_type or action.partition(".")[0]
    return execute(
        "INSERT INTO audit_log (merchant_id, action, object_type, object_id, before, after)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            merchant_id,
            action,
            object_type,
            object_id,
            Jsonb(before) if before is not None else None,
            Jsonb(after) if after is not None else None,
        ),
    )


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


_AUDIT = columns(AuditRow)


@store_function
def list_audit(
    merchant_id: str,
    *,
    object_id: str | None,
    action: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    starting_after: int | None,
) -> Statement[list[AuditRow]]:
    return fetch_all(
        AuditRow,
        f"SELECT {_AUDIT} FROM audit_log WHERE merchant_id = %(merchant)s"
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


# --- the chain -------------------------------------------------------------------


def chain_hash(prev: bytes, seq: int, content_hash: bytes | None) -> bytes:
    body = content_hash if content_hash is not None else b"gap"
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + body).digest()


@store_function
def seal_backlog() -> Statement[Backlog | None]:
    """For the metrics: how far the sealer is behind (both primary keys)."""
    return fetch_backlog(
        "audit_log WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_seals)",
        since="occurred_at",
    )


@dataclass(frozen=True, slots=True)
class _Seal:
    seq: int
    hash: bytes


@store_function
def seal(batch: int = 10_000) -> Steps[int]:
    """Chain every row up to the last one no open transaction can still add
    below; returns how many seqs were sealed. Safe to run anywhere, any time."""
    top = yield from _settled_top()
    if top is None:
        return 0
    return (yield from in_transaction(_seal_up_to(top, batch)))


def _settled_top() -> Steps[int | None]:
    """The highest seq below which no open transaction can still add a row:
    taking a SHARE lock waits out every transaction that wrote audit rows.
    None when one holds on too long (then seal next time)."""
    try:
        return (yield from in_transaction(_top_under_share_lock()))
    except psycopg.errors.LockNotAvailable:
        return None


def _top_under_share_lock() -> Steps[int]:
    yield from execute(f"SET LOCAL lock_timeout = '{_SEAL_LOCK_TIMEOUT}'")
    yield from execute("LOCK TABLE audit_log IN SHARE MODE")
    top = yield from fetch_value("SELECT coalesce(max(seq), 0) FROM audit_log")
    return int(top)


def _seal_up_to(top: int, batch: int) -> Steps[int]:
    got = yield from fetch_value("SELECT pg_try_advisory_xact_lock(%s)", (_SEAL_LOCK_ID,))
    if not got:
        return 0  # another sealer is at it
    last = yield from fetch_one(
        _Seal, "SELECT seq, hash FROM audit_seals ORDER BY seq DESC LIMIT 1"
    )
    sealed_to, prev = (last.seq, bytes(last.hash)) if last else (0, _GENESIS)
    total = 0
    while sealed_to < top:
        upto = min(top, sealed_to + batch)
        contents = yield from fetch_tuples(
            "SELECT seq, content_hash FROM audit_log WHERE seq > %s AND seq <= %s",
            (sealed_to, upto),
        )
        by_seq = {int(seq): bytes(content) for seq, content in contents}
        seals = []
        for seq in range(sealed_to + 1, upto + 1):
            content = by_seq.get(seq)
            hash_ = chain_hash(prev, seq, content)
            seals.append((seq, content is None, content, prev, hash_))
            prev = hash_
        yield from copy_rows(
            "COPY audit_seals (seq, gap, content_hash, prev_hash, hash) FROM STDIN", seals
        )
        total += upto - sealed_to
        sealed_to = upto
    return total


@dataclass
class AuditVerdict:
    sealed: int = 0
    unsealed: int = 0
    head: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


@store_function
def verify(limit: int = 50) -> Steps[AuditVerdict]:
    """Recompute every row's hash and the whole chain; name what is wrong."""
    verdict = yield from in_transaction(_verify_chain())
    unsealed = yield from fetch_value(
        "SELECT count(*) FROM audit_log WHERE seq > coalesce((SELECT max(seq) FROM audit_seals), 0)"
    )
    verdict.unsealed = int(unsealed or 0)
    del verdict.problems[limit:]
    return verdict


def _verify_chain() -> Steps[AuditVerdict]:
    verdict = AuditVerdict()
    by_hash: dict[bytes, int] = {}
    prev = _GENESIS
    mismatched: list[tuple[int, bytes | None]] = []
    # Read in batches through a cursor: the chain may be longer than memory.
    yield from execute(
        "DECLARE audit_verify NO SCROLL CURSOR FOR"
        " SELECT s.seq, s.gap, s.content_hash, s.prev_hash, s.hash, a.seq IS NOT NULL,"
        " audit_content_hash(a) FROM audit_seals s LEFT JOIN audit_log a ON a.seq = s.seq"
        " ORDER BY s.seq"
    )
    while rows := (yield from fetch_tuples(f"FETCH {_VERIFY_FETCH} FROM audit_verify")):
        for seq, gap, sealed_content, sealed_prev, sealed_hash, present, actual in rows:
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
    yield from execute("CLOSE audit_verify")
    for seq, actual in mismatched:
        moved_from = by_hash.get(actual) if actual is not None else None
        if moved_from is not None and moved_from != seq:
            verdict.problems.append(
                f"seq {seq}: holds the row sealed at seq {moved_from} (reordered)"
            )
        else:
            verdict.problems.append(f"seq {seq}: the row was edited after it was sealed")
    verdict.head = prev.hex()
    return verdict
