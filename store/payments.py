"""Payments, their timeline and their outbox rows.

The gateway creates payments and records what merchants ask (async); the
actors move them (sync). Every move writes the payment, its timeline event and
its outbox row in the caller's transaction, so the three can never disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from payments.ids import ID_CLOCK_MARGIN, id_at, new_id
from payments.lifecycle import Change
from payments.operations import OperationKind, psp_key
from payments.resources import event_envelope, payment_resource
from payments.status import EventSource, PaymentStatus
from store.operations import insert_operation_async
from store.rows import PAYMENT_COLUMNS, PaymentEventRow, PaymentRow
from telemetry.metrics import payment_transitions

_CREATE = """
WITH created AS (
    INSERT INTO payments (id, merchant_id, order_id, amount, currency, status, capture_method,
                          method_token, description, metadata, created_at, updated_at,
                          api_key_id)
    VALUES (%(id)s, %(merchant_id)s, %(order_id)s, %(amount)s, %(currency)s, 'PENDING',
            %(capture_method)s, %(method_token)s, %(description)s, %(metadata)s,
            %(created_at)s, %(created_at)s, %(api_key_id)s)
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
), audited AS (
    INSERT INTO audit_log (merchant_id, action, object_type, object_id, after)
    SELECT %(merchant_id)s, 'payment.created', 'payment', id, %(audit_after)s FROM created
), operation AS (
    INSERT INTO payment_operations (id, payment_id, merchant_id, kind, amount, psp_key, status,
                                    created_at, updated_at)
    SELECT %(operation_id)s, id, %(merchant_id)s, 'authorize', %(amount)s, %(psp_key)s,
           'pending', %(created_at)s, %(created_at)s
    FROM created
)
SELECT count(*) FROM created
"""

# One statement for the timeline event and its outbox row, used by both the
# sync and the async callers.
_APPEND_EVENT = """
WITH timeline AS (
    INSERT INTO payment_events (id, payment_id, merchant_id, type, from_status, to_status,
                                source, detail, created_at)
    VALUES (%(event_id)s, %(payment_id)s, %(merchant_id)s, %(type)s, %(from_status)s,
            %(to_status)s, %(source)s, %(detail)s, %(created_at)s)
), audited AS (
    INSERT INTO audit_log (merchant_id, action, object_type, object_id, before, after)
    VALUES (%(merchant_id)s, %(type)s, 'payment', %(payment_id)s, %(before)s, %(after)s)
)
INSERT INTO outbox (event_id, merchant_id, event_type, payload)
VALUES (%(event_id)s, %(merchant_id)s, %(type)s, %(envelope)s)
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


async def insert_payment(
    conn: AsyncConnection[Any], payment: PaymentRow, api_key_id: str | None = None
) -> str | None:
    """Write a new payment with its `payment.created` event, outbox row and
    pending authorization. Returns the authorization's operation id, or None
    when the merchant already has a payment for this order id."""
    event_id, operation_id = new_id("evt"), new_id("op")
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
            "operation_id": operation_id,
            "psp_key": psp_key(OperationKind.AUTHORIZE, payment.id),
            "api_key_id": api_key_id,
            "audit_after": Jsonb(_summary(payment)),
        },
    )
    row = await cursor.fetchone()
    if row is None or row[0] != 1:
        return None
    payment_transitions.labels("payment.created", payment.status, EventSource.API).inc()
    return operation_id


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
    conn: AsyncConnection[Any], merchant_id: str, payment_id: str, *, for_update: bool = False
) -> PaymentRow | None:
    """A merchant's payment; another merchant's is None, exactly as a missing one."""
    lock = " FOR UPDATE" if for_update else ""
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        await cursor.execute(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = %s AND merchant_id = %s{lock}",
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
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    starting_after: str | None = None,
) -> list[PaymentRow]:
    """A page of the merchant's payments, newest first, paged on the id.
    There is no index on the creation time, but ids are ULIDs: a time bound
    is also an id bound, which the (merchant_id, id) index serves; the
    created_at test stays, for precision."""
    clauses = ["merchant_id = %(merchant_id)s"]
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": limit}
    if order_id is not None:
        clauses.append("order_id = %(order_id)s")
        params["order_id"] = order_id
    if status is not None:
        clauses.append("status = %(status)s")
        params["status"] = status
    if created_from is not None:
        clauses += ["id >= %(id_from)s", "created_at >= %(created_from)s"]
        params["id_from"] = id_at("pay", created_from - ID_CLOCK_MARGIN)
        params["created_from"] = created_from
    if created_before is not None:
        clauses += ["id < %(id_before)s", "created_at < %(created_before)s"]
        params["id_before"] = id_at("pay", created_before + ID_CLOCK_MARGIN)
        params["created_before"] = created_before
    if starting_after is not None:
        clauses.append("id < %(starting_after)s")
        params["starting_after"] = starting_after
    query = (
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE {' AND '.join(clauses)}"
        " ORDER BY id DESC LIMIT %(limit)s"
    )
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


async def request_action(
    conn: AsyncConnection[Any], payment: PaymentRow, kind: OperationKind, amount: int
) -> tuple[PaymentRow, str]:
    """Record a merchant's capture or cancel of a payment locked by the caller:
    the pending action, its operation and a timeline event. Returns the payment
    as it is now and the operation id to nudge."""
    action = "capture" if kind is OperationKind.CAPTURE else "cancel"
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        await cursor.execute(
            f"UPDATE payments SET pending_action = %s, updated_at = clock_timestamp()"
            f" WHERE id = %s RETURNING {PAYMENT_COLUMNS}",
            (action, payment.id),
        )
        updated = await cursor.fetchone()
    assert updated is not None
    operation_id = await insert_operation_async(conn, updated, kind, amount)
    await conn.execute(
        _APPEND_EVENT,
        _event_params(
            updated,
            f"payment.{action}_requested",
            updated.status,
            EventSource.API,
            {"amount": amount},
        ),
    )
    return updated, operation_id


async def append_event_async(
    conn: AsyncConnection[Any],
    payment: PaymentRow,
    event_type: str,
    *,
    source: EventSource,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        _APPEND_EVENT, _event_params(payment, event_type, payment.status, source, detail)
    )


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
    caller: the row, a timeline event and an outbox row. Returns the new row.
    A change of status settles any pending capture or cancel."""
    moved = change.status != payment.status
    with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        cursor.execute(
            f"""
            UPDATE payments SET status = %(status)s,
                authorized_amount = %(authorized_amount)s,
                captured_amount = %(captured_amount)s,
                refunded_amount = coalesce(%(refunded_amount)s, refunded_amount),
                psp_reference = coalesce(%(psp_reference)s, psp_reference),
                failure_code = coalesce(%(failure_code)s, failure_code),
                failure_message = coalesce(%(failure_message)s, failure_message),
                pending_action = CASE WHEN %(moved)s THEN NULL ELSE pending_action END,
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
                "refunded_amount": change.refunded_amount,
                "psp_reference": change.psp_reference,
                "failure_code": change.failure_code,
                "failure_message": change.failure_message,
                "moved": moved,
            },
        )
        updated = cursor.fetchone()
    if updated is None:
        raise RuntimeError(f"payment {payment.id} moved while locked; lock it before changing it")
    append_event(
        conn, updated, change.event_type, from_status=payment.status, source=source, detail=detail
    )
    return updated


def set_pending_action(conn: Connection[Any], payment_id: str, action: str) -> None:
    conn.execute("UPDATE payments SET pending_action = %s WHERE id = %s", (action, payment_id))


def clear_pending_action(
    conn: Connection[Any],
    payment: PaymentRow,
    event_type: str,
    *,
    source: EventSource,
    detail: dict[str, Any],
) -> PaymentRow:
    """The PSP refused a capture or cancel: the payment stays as it was."""
    with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        cursor.execute(
            f"UPDATE payments SET pending_action = NULL, updated_at = clock_timestamp()"
            f" WHERE id = %s RETURNING {PAYMENT_COLUMNS}",
            (payment.id,),
        )
        updated = cursor.fetchone()
    assert updated is not None
    append_event(
        conn, updated, event_type, from_status=payment.status, source=source, detail=detail
    )
    return updated


def flag_for_reconciliation(
    conn: Connection[Any], payment: PaymentRow, reason: str, *, source: EventSource
) -> PaymentRow:
    """Nothing more can be learned by asking: a person or the settlement
    report has to decide. Never a FAILED without the PSP's word."""
    with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        cursor.execute(
            f"UPDATE payments SET requires_reconciliation = true, reconciliation_reason = %s,"
            f" updated_at = clock_timestamp() WHERE id = %s RETURNING {PAYMENT_COLUMNS}",
            (reason, payment.id),
        )
        updated = cursor.fetchone()
    assert updated is not None
    append_event(
        conn,
        updated,
        "payment.flagged_for_reconciliation",
        from_status=payment.status,
        source=source,
        detail={"reason": reason},
    )
    return updated


def clear_reconciliation_flag(conn: Connection[Any], payment: PaymentRow) -> PaymentRow:
    """The PSP's word came after all: the flag has done its job."""
    with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        cursor.execute(
            f"UPDATE payments SET requires_reconciliation = false WHERE id = %s"
            f" RETURNING {PAYMENT_COLUMNS}",
            (payment.id,),
        )
        updated = cursor.fetchone()
    assert updated is not None
    conn.execute(
        "UPDATE payment_operations SET flagged_at = NULL WHERE payment_id = %s", (payment.id,)
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
) -> None:
    """Write one timeline event and its outbox row for the payment as it is now."""
    conn.execute(_APPEND_EVENT, _event_params(payment, event_type, from_status, source, detail))


def _event_params(
    payment: PaymentRow,
    event_type: str,
    from_status: str | None,
    source: EventSource,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    """The parameters of `_APPEND_EVENT`; the event is counted for the metrics
    here, the one place every appended event passes."""
    payment_transitions.labels(event_type, payment.status, source).inc()
    event_id = new_id("evt")
    data = payment_resource(payment)
    if detail:
        data = {**data, "detail": detail}
    return {
        "event_id": event_id,
        "payment_id": payment.id,
        "merchant_id": payment.merchant_id,
        "type": event_type,
        "from_status": from_status,
        "to_status": payment.status,
        "source": source,
        "detail": Jsonb(detail or {}),
        "created_at": payment.updated_at,
        "envelope": Jsonb(event_envelope(event_id, event_type, payment.updated_at, data)),
        "before": Jsonb({"status": from_status}),
        "after": Jsonb({**_summary(payment), **({"detail": detail} if detail else {})}),
    }


def _summary(payment: PaymentRow) -> dict[str, Any]:
    """What the audit log keeps of a payment's state: status and amounts."""
    return {
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "authorizedAmount": payment.authorized_amount,
        "capturedAmount": payment.captured_amount,
        "refundedAmount": payment.refunded_amount,
    }
