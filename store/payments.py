"""Payments, their timeline and their outbox rows.

The gateway creates and reads payments (async); the actors move them (sync).
Every move writes the payment, its timeline event and its outbox row in the
caller's transaction, so the three can never disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from payments.ids import new_id
from payments.lifecycle import Change
from payments.resources import event_envelope, payment_resource
from payments.status import EventSource, PaymentStatus
from store.rows import PAYMENT_COLUMNS, PaymentEventRow, PaymentRow

_CREATE = """
WITH created AS (
    INSERT INTO payments (id, merchant_id, order_id, amount, currency, status, capture_method,
                          method_token, description, metadata, created_at, updated_at)
    VALUES (%(id)s, %(merchant_id)s, %(order_id)s, %(amount)s, %(currency)s, 'PENDING',
            %(capture_method)s, %(method_token)s, %(description)s, %(metadata)s,
            %(created_at)s, %(created_at)s)
    ON CONFLICT (merchant_id, order_id) DO NOTHING
    RETURNING id
), timeline AS (
    INSERT INTO payment_events (id, payment_id, merchant_id, type, from_status, to_status,
                                source, created_at)
    SELECT %(event_id)s, id, %(merchant_id)s, 'payment.created', NULL, 'PENDING', 'api',
           %(created_at)s
    FROM created
), queued AS (
    INSERT INTO outbox (event_id, merchant_id, event_type, payload)
    SELECT %(event_id)s, %(merchant_id)s, 'payment.created', %(envelope)s FROM created
)
SELECT count(*) FROM created
"""


def new_payment(
    *,
    merchant_id: str,
    order_id: str,
    amount: int,
    currency: str,
    capture_method: str,
    method_token: str,
    description: str | None,
    metadata: dict[str, Any],
    now: datetime,
) -> PaymentRow:
    """The row a payment starts as, before it is written."""
    return PaymentRow(
        id=new_id("pay"),
        merchant_id=merchant_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        status=PaymentStatus.PENDING,
        capture_method=capture_method,
        method_token=method_token,
        description=description,
        metadata=metadata,
        authorized_amount=0,
        captured_amount=0,
        refunded_amount=0,
        psp_reference=None,
        failure_code=None,
        failure_message=None,
        created_at=now,
        updated_at=now,
    )


async def insert_payment(conn: AsyncConnection[Any], payment: PaymentRow) -> bool:
    """Write a new payment with its `payment.created` event and outbox row.
    False when the merchant already has a payment for this order id."""
    event_id = new_id("evt")
    envelope = event_envelope(
        event_id, "payment.created", payment.created_at, payment_resource(payment)
    )
    cursor = await conn.execute(
        _CREATE,
        {
            "id": payment.id,
            "merchant_id": payment.merchant_id,
            "order_id": payment.order_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "capture_method": payment.capture_method,
            "method_token": payment.method_token,
            "description": payment.description,
            "metadata": Jsonb(payment.metadata),
            "created_at": payment.created_at,
            "event_id": event_id,
            "envelope": Jsonb(envelope),
        },
    )
    row = await cursor.fetchone()
    return row is not None and row[0] == 1


async def find_payment_id_for_order(
    conn: AsyncConnection[Any], merchant_id: str, order_id: str
) -> str | None:
    cursor = await conn.execute(
        "SELECT id FROM payments WHERE merchant_id = %s AND order_id = %s",
        (merchant_id, order_id),
    )
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def get_payment(
    conn: AsyncConnection[Any], merchant_id: str, payment_id: str
) -> PaymentRow | None:
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        await cursor.execute(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = %s AND merchant_id = %s",
            (payment_id, merchant_id),
        )
        return await cursor.fetchone()


async def list_payments(
    conn: AsyncConnection[Any],
    merchant_id: str,
    *,
    limit: int,
    order_id: str | None = None,
    status: str | None = None,
    starting_after: str | None = None,
) -> list[PaymentRow]:
    """A page of the merchant's payments, newest first, paged on the id."""
    clauses = ["merchant_id = %(merchant_id)s"]
    if order_id is not None:
        clauses.append("order_id = %(order_id)s")
    if status is not None:
        clauses.append("status = %(status)s")
    if starting_after is not None:
        clauses.append("id < %(starting_after)s")
    query = (
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE {' AND '.join(clauses)}"
        " ORDER BY id DESC LIMIT %(limit)s"
    )
    params = {
        "merchant_id": merchant_id,
        "order_id": order_id,
        "status": status,
        "starting_after": starting_after,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def list_events(
    conn: AsyncConnection[Any], merchant_id: str, payment_id: str
) -> list[PaymentEventRow]:
    async with conn.cursor(row_factory=class_row(PaymentEventRow)) as cursor:
        await cursor.execute(
            "SELECT id, payment_id, type, from_status, to_status, source, detail, created_at"
            " FROM payment_events WHERE payment_id = %s AND merchant_id = %s"
            " ORDER BY created_at, id",
            (payment_id, merchant_id),
        )
        return await cursor.fetchall()


# --- moves, used by the actors (sync) ---------------------------------------


def load_payment(
    conn: Connection[Any], payment_id: str, *, for_update: bool = False
) -> PaymentRow | None:
    """Read a payment; with for_update, lock it until the transaction ends so
    the API, the actors and the webhooks take turns on it."""
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        cursor.execute(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = %s{lock}", (payment_id,))
        return cursor.fetchone()


def record_change(
    conn: Connection[Any],
    payment: PaymentRow,
    change: Change,
    *,
    source: EventSource,
    detail: dict[str, Any] | None = None,
) -> PaymentRow:
    """Apply a change decided by `payments.lifecycle` to a payment locked by the
    caller: the row, a timeline event and an outbox row. Returns the new row."""
    with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        cursor.execute(
            f"""
            UPDATE payments SET status = %(status)s,
                authorized_amount = %(authorized_amount)s,
                captured_amount = %(captured_amount)s,
                psp_reference = coalesce(%(psp_reference)s, psp_reference),
                failure_code = %(failure_code)s,
                failure_message = %(failure_message)s,
                updated_at = clock_timestamp()
            WHERE id = %(id)s AND status = %(expected_status)s
            RETURNING {PAYMENT_COLUMNS}
            """,
            {
                "id": payment.id,
                "expected_status": payment.status,
                "status": change.status,
                "authorized_amount": change.authorized_amount,
                "captured_amount": change.captured_amount,
                "psp_reference": change.psp_reference,
                "failure_code": change.failure_code,
                "failure_message": change.failure_message,
            },
        )
        updated = cursor.fetchone()
    if updated is None:
        raise RuntimeError(f"payment {payment.id} moved while locked; lock it before changing it")
    append_event(
        conn, updated, change.event_type, from_status=payment.status, source=source, detail=detail
    )
    return updated


def append_event(
    conn: Connection[Any],
    payment: PaymentRow,
    event_type: str,
    *,
    from_status: str | None,
    source: EventSource,
    detail: dict[str, Any] | None = None,
) -> str:
    """Write one timeline event and its outbox row for the payment as it is now."""
    event_id = new_id("evt")
    envelope = event_envelope(event_id, event_type, payment.updated_at, payment_resource(payment))
    conn.execute(
        "INSERT INTO payment_events (id, payment_id, merchant_id, type, from_status, to_status,"
        " source, detail, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event_id,
            payment.id,
            payment.merchant_id,
            event_type,
            from_status,
            payment.status,
            source,
            Jsonb(detail or {}),
            payment.updated_at,
        ),
    )
    conn.execute(
        "INSERT INTO outbox (event_id, merchant_id, event_type, payload) VALUES (%s, %s, %s, %s)",
        (event_id, payment.merchant_id, event_type, Jsonb(envelope)),
    )
    return event_id
