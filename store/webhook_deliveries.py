"""Deliveries of events to merchant endpoints: one row per (endpoint, event),
with its tries, its next try, and dead letters kept for replay."""

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
from store.statements import columns
from store.statements import execute
from store.statements import execute_many
from store.statements import fetch_all
from store.statements import fetch_one
from store.statements import store_function


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    endpoint_id: str
    merchant_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


_COLUMNS = columns(DeliveryRow)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    endpoint_id: str
    merchant_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]


@store_function
def insert_deliveries(deliveries: list[NewDelivery]) -> Steps[int]:
    """Add deliveries; one already made for an (endpoint, event) is skipped.
    Returns how many are new."""
    if not deliveries:
        return 0
    return (
        yield from execute_many(
            "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, event_id, event_type,"
            " payload) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            [
                (
                    new_id("wd"),
                    d.endpoint_id,
                    d.merchant_id,
                    d.event_id,
                    d.event_type,
                    Jsonb(d.payload),
                )
                for d in deliveries
            ],
        )
    )


@store_function
def lease_due(*, limit: int, lease: timedelta) -> Statement[list[DeliveryRow]]:
    """Deliveries due now, pushed `lease` into the future so that no other
    sender takes them while this one tries."""
    return fetch_all(
        DeliveryRow,
        f"UPDATE webhook_deliveries SET next_attempt_at = now() + %s WHERE id IN ("
        f" SELECT id FROM webhook_deliveries"
        f" WHERE status = 'pending' AND next_attempt_at <= now()"
        f" ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING {_COLUMNS}",
        (lease, limit),
    )


@store_function
def record_delivered(delivery_id: str, status: int) -> Statement[int]:
    return execute(
        "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,"
        " last_status = %s, last_error = NULL, delivered_at = now() WHERE id = %s",
        (status, delivery_id),
    )


@store_function
def record_failure(
    delivery_id: str, *, status: int | None, error: str, retry_in: timedelta | None
) -> Statement[int]:
    """A failed try: again after `retry_in`, or dead (a dead letter) without it."""
    if retry_in is None:
        return execute(
            "UPDATE webhook_deliveries SET status = 'dead', attempts = attempts + 1,"
            " last_status = %s, last_error = %s WHERE id = %s",
            (status, error[:500], delivery_id),
        )
    return execute(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = %s,"
        " last_error = %s, next_attempt_at = now() + %s WHERE id = %s",
        (status, error[:500], retry_in, delivery_id),
    )


@store_function
def list_deliveries(
    merchant_id: str,
    *,
    status: str | None,
    endpoint_id: str | None,
    limit: int,
    starting_after: str | None,
) -> Statement[list[DeliveryRow]]:
    clauses = ["merchant_id = %(merchant_id)s"]
    if status is not None:
        clauses.append("status = %(status)s")
    if endpoint_id is not None:
        clauses.append("endpoint_id = %(endpoint_id)s")
    if starting_after is not None:
        clauses.append("id < %(starting_after)s")
    params = {
        "merchant_id": merchant_id,
        "status": status,
        "endpoint_id": endpoint_id,
        "starting_after": starting_after,
        "limit": limit,
    }
    return fetch_all(
        DeliveryRow,
        f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE {' AND '.join(clauses)}"
        " ORDER BY id DESC LIMIT %(limit)s",
        params,
    )


@store_function
def replay_delivery(merchant_id: str, delivery_id: str) -> Steps[DeliveryRow | None]:
    """Send a dead letter (or any delivery) again, from its first try, and
    audit it; None when the merchant has no such delivery."""
    delivery = yield from fetch_one(
        DeliveryRow,
        f"UPDATE webhook_deliveries SET status = 'pending', attempts = 0,"
        f" next_attempt_at = now(), delivered_at = NULL WHERE id = %s AND merchant_id = %s"
        f" RETURNING {_COLUMNS}",
        (delivery_id, merchant_id),
    )
    if delivery is not None:
        yield from record.steps(
            merchant_id=merchant_id,
            action="webhook_delivery.replayed",
            object_id=delivery.id,
            after={"eventId": delivery.event_id, "endpointId": delivery.endpoint_id},
        )
    return delivery
