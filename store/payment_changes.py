"""Changes to a payment, each named for what it is, on a payment the caller
has locked (`get_payment(..., for_update=True)`). Each writes the payment and
its timeline event (with the audit and outbox rows) in the caller's
transaction, and returns both (`Changed`): the caller counts the event for
the metrics once the transaction has committed."""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

from payments.events import ACTION_REFUSED
from payments.events import ACTION_REQUESTED
from payments.events import EventType
from payments.lifecycle import Change
from payments.operations import OperationKind
from payments.operations import pending_action
from payments.records import PaymentRecord
from payments.records import TimelineEvent
from payments.status import EventSource
from store.operations import insert_operation
from store.operations import unflag_operations
from store.statements import Steps
from store.statements import columns
from store.statements import fetch_one
from store.statements import store_function
from store.timeline import Changed
from store.timeline import append_event

_RETURNING = f"RETURNING {columns(PaymentRecord)}"


@store_function
def record_change(
    payment: PaymentRecord,
    change: Change,
    *,
    source: EventSource,
    detail: dict[str, Any] | None = None,
) -> Steps[Changed]:
    """Apply a change decided by `payments.lifecycle`. A change of status
    settles any pending capture or cancel; one into REQUIRES_ACTION starts
    the wait for the customer (its page, its expiry), and any change ends
    the janitor's schedule of checks on that wait."""
    updated = yield from fetch_one(
        PaymentRecord,
        f"""
        UPDATE payments SET status = %(status)s,
            authorized_amount = %(authorized_amount)s,
            captured_amount = %(captured_amount)s,
            refunded_amount = coalesce(%(refunded_amount)s, refunded_amount),
            psp_reference = coalesce(%(psp_reference)s, psp_reference),
            failure_code = coalesce(%(failure_code)s, failure_code),
            failure_message = coalesce(%(failure_message)s, failure_message),
            pending_action = CASE WHEN %(moved)s THEN NULL ELSE pending_action END,
            next_action_url = coalesce(%(next_action_url)s, next_action_url),
            action_expires_at = coalesce(
                clock_timestamp() + %(action_expires_in)s::interval, action_expires_at
            ),
            action_check_at = NULL,
            updated_at = clock_timestamp()
        WHERE id = %(id)s AND status = %(expected_status)s
        {_RETURNING}
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
            "next_action_url": change.next_action_url,
            "action_expires_in": change.action_expires_in,
            "moved": change.status != payment.status,
        },
    )
    if updated is None:
        raise RuntimeError(f"payment {payment.id} moved while locked; lock it before changing it")
    event = yield from append_event.steps(
        updated, change.event_type, from_status=payment.status, source=source, detail=detail
    )
    return Changed(updated, event)


class Requested(NamedTuple):
    payment: PaymentRecord
    operation_id: str  # to nudge once committed
    event: TimelineEvent


@store_function
def request_action(
    payment: PaymentRecord, kind: OperationKind, amount: int, *, source: EventSource
) -> Steps[Requested]:
    """A capture or cancel of the payment: its pending action, its PSP
    operation and its timeline event (`payment.capture_requested`,
    `payment.cancel_requested`). Asked by the merchant (source `api`), or by
    paystream for an automatic payment the PSP only authorized (the source
    that learned of the authorization)."""
    action = pending_action(kind)
    updated, event = yield from _noted(
        payment,
        "pending_action = %s",
        (action,),
        ACTION_REQUESTED[action],
        source,
        {"amount": amount},
    )
    operation_id = yield from insert_operation.steps(updated, kind, amount)
    return Requested(updated, operation_id, event)


@store_function
def record_action_refused(
    payment: PaymentRecord, kind: OperationKind, *, source: EventSource, detail: dict[str, Any]
) -> Steps[Changed]:
    """The PSP refused a capture or cancel: the payment stays as it was, its
    pending action cleared, and the timeline says why
    (`payment.capture_failed`, `payment.cancel_failed`)."""
    refused = ACTION_REFUSED[pending_action(kind)]
    return (yield from _noted(payment, "pending_action = NULL", (), refused, source, detail))


@store_function
def flag_for_reconciliation(
    payment: PaymentRecord, reason: str, *, source: EventSource
) -> Steps[Changed]:
    """Nothing more can be learned by asking: a person or the settlement
    report has to decide. Never a FAILED without the PSP's word."""
    return (
        yield from _noted(
            payment,
            "requires_reconciliation = true, reconciliation_reason = %s",
            (reason,),
            EventType.PAYMENT_FLAGGED_FOR_RECONCILIATION,
            source,
            {"reason": reason},
        )
    )


def _noted(
    payment: PaymentRecord,
    assignments: str,
    values: tuple[Any, ...],
    event_type: EventType,
    source: EventSource,
    detail: dict[str, Any],
) -> Steps[Changed]:
    """A change that leaves the status as it is (`assignments` to the
    payment's columns) and its timeline event."""
    updated = yield from fetch_one(
        PaymentRecord,
        f"UPDATE payments SET {assignments}, updated_at = clock_timestamp()"
        f" WHERE id = %s {_RETURNING}",
        (*values, payment.id),
    )
    assert updated is not None
    event = yield from append_event.steps(
        updated, event_type, from_status=payment.status, source=source, detail=detail
    )
    return Changed(updated, event)


@store_function
def clear_reconciliation_flag(payment: PaymentRecord) -> Steps[PaymentRecord]:
    """The PSP's word came after all: the flag has done its job."""
    updated = yield from fetch_one(
        PaymentRecord,
        f"UPDATE payments SET requires_reconciliation = false WHERE id = %s {_RETURNING}",
        (payment.id,),
    )
    assert updated is not None
    yield from unflag_operations.steps(payment.id)
    return updated
