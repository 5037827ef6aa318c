"""Refunds. Creating one reserves its amount on the payment with a single
conditional UPDATE, so two refunds racing for the last euro cannot both win:
the database's CHECK keeps reservations within the captured amount.

Reads are scoped to a merchant (the API) or say they are not (the actors),
as payments' are (`store.payments`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from typing import NamedTuple

from payments.events import EventType
from payments.ids import new_id
from payments.operations import OperationKind
from payments.records import PaymentRecord
from payments.records import RefundRecord
from payments.records import TimelineEvent
from payments.status import EventSource
from payments.status import RefundStatus
from store.operations import insert_operation
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_by_id
from store.statements import fetch_one
from store.statements import parameters
from store.statements import placeholders
from store.statements import store_function
from store.timeline import Changed
from store.timeline import append_event

_REFUND = columns(RefundRecord)
_PAYMENT = columns(PaymentRecord)


class CreatedRefund(NamedTuple):
    refund: RefundRecord
    operation_id: str  # to nudge once committed
    event: TimelineEvent


@store_function
def create_refund(
    payment: PaymentRecord, amount: int, reason: str | None, now: datetime
) -> Steps[CreatedRefund | None]:
    """Reserve `amount` on a captured payment and write the refund, its PSP
    operation and a timeline event. None when the amount is no longer
    available (another refund took it first)."""
    reserved = yield from fetch_one(
        PaymentRecord,
        f"UPDATE payments SET refund_reserved_amount = refund_reserved_amount + %(amount)s,"
        f" updated_at = clock_timestamp()"
        f" WHERE id = %(id)s AND status = 'CAPTURED'"
        f" AND refund_reserved_amount + %(amount)s <= captured_amount"
        f" RETURNING {_PAYMENT}",
        {"id": payment.id, "amount": amount},
    )
    if reserved is None:
        return None
    refund = RefundRecord(
        id=new_id("re"),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        amount=amount,
        currency=payment.currency,
        status=RefundStatus.PENDING,
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    yield from execute(
        f"INSERT INTO refunds ({_REFUND}) VALUES ({placeholders(RefundRecord)})",
        parameters(refund),
    )
    operation_id = yield from insert_operation.steps(
        reserved, OperationKind.REFUND, amount, refund.id
    )
    event = yield from append_event.steps(
        reserved,
        EventType.REFUND_CREATED,
        from_status=reserved.status,
        source=EventSource.API,
        detail={"refundId": refund.id, "amount": amount},
    )
    return CreatedRefund(refund, operation_id, event)


@store_function
def get_refund(merchant_id: str, refund_id: str) -> Statement[RefundRecord | None]:
    """A merchant's refund; another merchant's is None, exactly as a missing one."""
    return fetch_by_id(RefundRecord, "refunds", refund_id, merchant_id=merchant_id)


@store_function
def get_refund_unscoped(
    refund_id: str, *, for_update: bool = False
) -> Statement[RefundRecord | None]:
    """Any merchant's refund, for the actors; with for_update, locked until
    the transaction ends (lock its payment first)."""
    return fetch_by_id(RefundRecord, "refunds", refund_id, for_update=for_update)


@store_function
def list_refunds(merchant_id: str, payment_id: str) -> Statement[list[RefundRecord]]:
    return fetch_all(
        RefundRecord,
        f"SELECT {_REFUND} FROM refunds WHERE payment_id = %s AND merchant_id = %s ORDER BY id",
        (payment_id, merchant_id),
    )


@store_function
def settle_refund(
    refund: RefundRecord,
    payment: PaymentRecord,
    status: RefundStatus,
    *,
    source: EventSource,
    psp_reference: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> Steps[Changed]:
    """Close a pending refund, with the payment locked by the caller. A failed
    refund gives its reservation back; a succeeded one is written to the
    payment by the caller (`record_change` with `refund_succeeded`)."""
    yield from execute(
        "UPDATE refunds SET status = %s, psp_reference = %s, failure_code = %s,"
        " failure_message = %s, updated_at = clock_timestamp() WHERE id = %s",
        (status, psp_reference, failure_code, failure_message, refund.id),
    )
    if status is RefundStatus.FAILED:
        released = yield from fetch_one(
            PaymentRecord,
            f"UPDATE payments SET refund_reserved_amount = refund_reserved_amount - %s,"
            f" updated_at = clock_timestamp() WHERE id = %s RETURNING {_PAYMENT}",
            (refund.amount, payment.id),
        )
        assert released is not None
        payment = released
    succeeded = status is RefundStatus.SUCCEEDED
    detail: dict[str, Any] = {"refundId": refund.id, "amount": refund.amount}
    if failure_code:
        detail["failureCode"] = failure_code
    event = yield from append_event.steps(
        payment,
        EventType.REFUND_SUCCEEDED if succeeded else EventType.REFUND_FAILED,
        from_status=payment.status,
        source=source,
        detail=detail,
    )
    return Changed(payment, event)
