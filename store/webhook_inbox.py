"""The inbox of PSP webhooks: stored before they are acknowledged, applied by
an actor, kept whatever happens to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from payments.ids import new_id
from store.audit import record_async


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: str
    provider: str
    webhook_id: str
    event_type: str
    reference: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    received_at: datetime
    updated_at: datetime


_COLUMNS = (
    "id, provider, webhook_id, event_type, reference, payload, status, attempts, last_error,"
    " received_at, updated_at"
)


async def insert_inbox(
    conn: AsyncConnection[Any],
    *,
    provider: str,
    webhook_id: str,
    event_type: str,
    reference: str | None,
    payload: dict[str, Any],
) -> str | None:
    """Store a callback; None when this webhook id was stored before."""
    cursor = await conn.execute(
        "INSERT INTO webhook_inbox (id, provider, webhook_id, event_type, reference, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (provider, webhook_id) DO NOTHING"
        " RETURNING id",
        (new_id("whin"), provider, webhook_id, event_type, reference, Jsonb(payload)),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    await record_async(
        conn,
        merchant_id=None,
        action="psp_webhook.received",
        object_type="psp_webhook",
        object_id=str(row[0]),
        after={"webhookId": webhook_id, "type": event_type, "reference": reference},
    )
    return str(row[0])


def load_inbox(
    conn: Connection[Any], inbox_id: str, *, for_update: bool = False
) -> InboxRow | None:
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(InboxRow)) as cursor:
        cursor.execute(f"SELECT {_COLUMNS} FROM webhook_inbox WHERE id = %s{lock}", (inbox_id,))
        return cursor.fetchone()


def settle_inbox(
    conn: Connection[Any], inbox_id: str, status: str, error: str | None = None
) -> None:
    conn.execute(
        "UPDATE webhook_inbox SET status = %s, last_error = %s, updated_at = now() WHERE id = %s",
        (status, error, inbox_id),
    )


def count_attempt(conn: Connection[Any], inbox_id: str, error: str) -> int:
    """One more try that could not apply the callback; returns the tries so far."""
    row = conn.execute(
        "UPDATE webhook_inbox SET attempts = attempts + 1, last_error = %s, updated_at = now()"
        " WHERE id = %s RETURNING attempts",
        (error, inbox_id),
    ).fetchone()
    return int(row[0]) if row else 0


def stalled_inbox(conn: Connection[Any], *, idle: timedelta, limit: int) -> list[str]:
    """Pending callbacks nobody touched for `idle` (their nudge was lost)."""
    rows = conn.execute(
        "UPDATE webhook_inbox SET updated_at = now() WHERE id IN ("
        " SELECT id FROM webhook_inbox WHERE status = 'pending' AND updated_at <= now() - %s"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
        (idle, limit),
    ).fetchall()
    return [str(row[0]) for row in rows]


def unmatched_inbox(conn: Connection[Any], limit: int = 100) -> list[InboxRow]:
    with conn.cursor(row_factory=class_row(InboxRow)) as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM webhook_inbox WHERE status = 'unmatched'"
            " ORDER BY received_at LIMIT %s",
            (limit,),
        )
        return cursor.fetchall()
