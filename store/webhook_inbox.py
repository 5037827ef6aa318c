"""The inbox of PSP webhooks: stored before they are acknowledged, applied by
an actor, kept whatever happens to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb

from payments.ids import new_id
from store.audit import record
from store.statements import Statement
from store.statements import Steps
from store.statements import execute
from store.statements import fetch_by_id
from store.statements import fetch_value
from store.statements import fetch_values
from store.statements import store_function


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


@store_function
def insert_inbox(
    *,
    provider: str,
    webhook_id: str,
    event_type: str,
    reference: str | None,
    payload: dict[str, Any],
) -> Steps[str | None]:
    """Store a callback; None when this webhook id was stored before."""
    inbox_id = yield from fetch_value(
        "INSERT INTO webhook_inbox (id, provider, webhook_id, event_type, reference, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (provider, webhook_id) DO NOTHING"
        " RETURNING id",
        (new_id("whin"), provider, webhook_id, event_type, reference, Jsonb(payload)),
    )
    if inbox_id is None:
        return None
    yield from record.steps(
        merchant_id=None,
        action="psp_webhook.received",
        object_id=str(inbox_id),
        after={"webhookId": webhook_id, "type": event_type, "reference": reference},
    )
    return str(inbox_id)


@store_function
def get_inbox(inbox_id: str) -> Statement[InboxRow | None]:
    return fetch_by_id(InboxRow, "webhook_inbox", inbox_id)


@store_function
def settle_inbox(inbox_id: str, status: str, error: str | None = None) -> Statement[int]:
    return execute(
        "UPDATE webhook_inbox SET status = %s, last_error = %s, updated_at = now() WHERE id = %s",
        (status, error, inbox_id),
    )


@store_function
def count_attempt(inbox_id: str, error: str) -> Steps[int]:
    """One more try that could not apply the callback; returns the tries so far."""
    tries = yield from fetch_value(
        "UPDATE webhook_inbox SET attempts = attempts + 1, last_error = %s, updated_at = now()"
        " WHERE id = %s RETURNING attempts",
        (error, inbox_id),
    )
    return int(tries or 0)


@store_function
def stalled_inbox(*, idle: timedelta, limit: int) -> Steps[list[str]]:
    """Pending callbacks nobody touched for `idle` (their nudge was lost)."""
    ids = yield from fetch_values(
        "UPDATE webhook_inbox SET updated_at = now() WHERE id IN ("
        " SELECT id FROM webhook_inbox WHERE status = 'pending' AND updated_at <= now() - %s"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
        (idle, limit),
    )
    return [str(inbox_id) for inbox_id in ids]
