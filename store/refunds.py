"""Refunds. Creating one reserves its amount on the payment with a single
conditional UPDATE, so two refunds racing for the last euro cannot both win:
the database's CHECK keeps reservations within the captured amount."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from payments.ids import new_id
from payments.operations import OperationKind
from payments.status import EventSource, RefundStatus
from store.operations import insert_operation_async
from store.payments import append_event, append_event_async
from store.rows import PAYMENT_COLUMNS, REFUND_COLUMNS, PaymentRow, RefundRow


async def create_refund(
    conn: AsyncConnection[Any],
    payment: PaymentRow,
    amount: int,
    reason: str | None,
    now: datetime,
) -> tuple[RefundRow, str] | None:
    """Reserve `amount` on a captured payment and write the refund, its PSP
    operation and a timeline event. None when the amount is no longer
    available (another refund took it first)."""
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        await cursor.execute(
            f"UPDATE payments SET refund_reserved_amount = refund_reserved_amount + %(amount)s,"
            f" updated_at = clock_timestamp()"
            f" WHERE id = %(id)s AND status = 'CAPTURED'"
            f" AND refund_reserved_amount + %(amount)s <= captured_amount"
            f" RETURNING {PAYMENT_COLUMNS}",
            {"id": payment.id, "amount": amount},
        )
        reserved = await cursor.fetchone()
    if reserved is None:
        return None
    async with conn.cursor(row_factory=class_row(RefundRow)) as cursor:
        await cursor.execute(
            f"INSERT INTO refunds (id, payment_id, merchant_id, amount, currency, status, reason,"
            f" created_at, updated_at) VALUES (%s, %s, %s, %s, %s, 'PENDING', %s, %s, %s)"
            f" RETURNING {REFUND_COLUMNS}",
            (
                new_id("re"),
                payment.id,
                payment.merchant_id,
                amount,
                payment.currency,
                reason,
                now,
                now,
            ),
        )
        refund = await cursor.fetchone()
    assert refund is not None
    operation_id = await insert_operation_async(
        conn, reserved, OperationKind.REFUND, amount, refund_id=refund.id
    )
    await append_event_async(
        conn,
        reserved,
        "refund.created",
        source=EventSource.API,
        detail={"refundId": refund.id, "amount": amount},
    )
    return refund, operation_id


async def get_refund(
    conn: AsyncConnection[Any], merchant_id: str, refund_id: str
) -> RefundRow | None:
    async with conn.cursor(row_factory=class_row(RefundRow)) as cursor:
        await cursor.execute(
            f"SELECT {REFUND_COLUMNS} FROM refunds WHERE id = %s AND merchant_id = %s",
            (refund_id, merchant_id),
        )
        return await cursor.fetchone()


async def list_refunds(
    conn: AsyncConnection[Any], merchant_id: str, payment_id: str
) -> list[RefundRow]:
    async with conn.cursor(row_factory=class_row(RefundRow)) as cursor:
        await cursor.execute(
            f"SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = %s AND merchant_id = %s"
            " ORDER BY id",
            (payment_id, merchant_id),
        )
        return await cursor.fetchall()


# --- outcomes, used by the actors (sync) -------------------------------------


def load_refund(
    conn: Connection[Any], refund_id: str, *, for_update: bool = False
) -> RefundRow | None:
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(RefundRow)) as cursor:
        cursor.execute(f"SELECT {REFUND_COLUMNS} FROM refunds WHERE id = %s{lock}", (refund_id,))
        return cursor.fetchone()


def settle_refund(
    conn: Connection[Any],
    refund: RefundRow,
    payment: PaymentRow,
    status: RefundStatus,
    *,
    source: EventSource,
    psp_reference: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> PaymentRow:
    """Close a pending refund, with the payment locked by the caller. A failed
    refund gives its reservation back; a succeeded one is written to the
    payment by the caller (`record_change` with `refund_succeeded`)."""
    conn.execute(
        "UPDATE refunds SET status = %s, psp_reference = %s, failure_code = %s,"
        " failure_message = %s, updated_at = clock_timestamp() WHERE id = %s",
        (status, psp_reference, failure_code, failure_message, refund.id),
    )
    if status is RefundStatus.FAILED:
        with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
            cursor.execute(
                f"UPDATE payments SET refund_reserved_amount = refund_reserved_amount - %s,"
                f" updated_at = clock_timestamp() WHERE id = %s RETURNING {PAYMENT_COLUMNS}",
                (refund.amount, payment.id),
            )
            released = cursor.fetchone()
        assert released is not None
        payment = released
    event = "refund.succeeded" if status is RefundStatus.SUCCEEDED else "refund.failed"
    detail: dict[str, Any] = {"refundId": refund.id, "amount": refund.amount}
    if failure_code:
        detail["failureCode"] = failure_code
    append_event(conn, payment, event, from_status=payment.status, source=source, detail=detail)
    return payment
