"""Writing what the PSP said: each function is one transaction that locks the
payment first (then what hangs off it), decides with `payments.lifecycle`, and
writes the payment, its timeline, its outbox row and the operation together.
Whoever comes second (a duplicate message, a webhook, a janitor re-drive)
finds the work done and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from payments.errors import InconsistentPspAnswer
from payments.ledger import capture_entry, refund_entry
from payments.lifecycle import (
    Captured,
    Change,
    PspFact,
    Voided,
    apply_fact,
    needs_capture_after_authorization,
    refund_succeeded,
)
from payments.operations import OperationKind, OperationStatus
from payments.status import EventSource, PaymentStatus, RefundStatus
from store.audit import acting, system
from store.ledger import post_entry
from store.operations import (
    finish_operation,
    flag_operation,
    insert_operation,
    load_operation,
    pending_operation,
    pending_refund_operation,
)
from store.payments import (
    clear_pending_action,
    clear_reconciliation_flag,
    flag_for_reconciliation,
    load_payment,
    record_change,
    set_pending_action,
)
from store.refunds import load_refund, settle_refund

Detail = dict[str, Any]


def apply_payment_fact(
    pool: ConnectionPool[Any],
    payment_id: str,
    fact: PspFact,
    *,
    source: EventSource,
    operation_id: str | None = None,
    operation_status: OperationStatus = OperationStatus.SUCCEEDED,
    detail: Detail | None = None,
    on_authorization: Callable[[str, bool], object] | None = None,
) -> list[str]:
    """Write a PSP fact about a payment and close the operation it answers.
    Returns operations to nudge once committed (the capture of an automatic
    payment the PSP only authorized). `on_authorization(key id, declined)`
    hears, after commit, of the authorization outcome this fact settled."""
    follow_ups: list[str] = []
    settled: tuple[str, bool] | None = None
    with acting(pool, actor_of(source)) as conn:
        payment = load_payment(conn, payment_id, for_update=True)
        if payment is None:
            return follow_ups
        if operation_id is None:
            # A webhook or the settlement report: it answers the pending call
            # of its kind, if any.
            kind = answered_kind(fact, PaymentStatus(payment.status))
            pending = pending_operation(conn, payment_id, kind)
            operation_id = pending.id if pending else None
        elif not _still_pending(conn, operation_id):
            return follow_ups
        try:
            change = apply_fact(payment.state(), fact)
        except InconsistentPspAnswer as error:
            _flag(conn, payment_id, operation_id, str(error), source)
            return follow_ups
        if operation_id is not None:
            finish_operation(conn, operation_id, operation_status)
        if change is not None:
            if payment.status == PaymentStatus.PENDING and payment.api_key_id:
                settled = (payment.api_key_id, change.status == PaymentStatus.FAILED)
            payment = record_change(conn, payment, change, source=source, detail=detail)
            if payment.requires_reconciliation:
                payment = clear_reconciliation_flag(conn, payment)
            if payment.status == PaymentStatus.CAPTURED:
                entry = capture_entry(payment.id, payment.captured_amount, payment.currency)
                post_entry(conn, payment.merchant_id, entry)
        if needs_capture_after_authorization(payment.state()) and payment.pending_action is None:
            capture = OperationKind.CAPTURE
            follow_ups.append(insert_operation(conn, payment, capture, payment.authorized_amount))
            set_pending_action(conn, payment.id, "capture")
    if settled is not None and on_authorization is not None:
        on_authorization(*settled)
    return follow_ups


def refuse_action(
    pool: ConnectionPool[Any], operation_id: str, code: str, message: str, *, source: EventSource
) -> None:
    """The PSP refused a capture or a void: the payment stays as it was, and
    the merchant sees why in the timeline."""
    with acting(pool, actor_of(source)) as conn:
        operation = load_operation(conn, operation_id)
        if operation is None:
            return
        payment = load_payment(conn, operation.payment_id, for_update=True)
        if payment is None or not _still_pending(conn, operation_id):
            return
        finish_operation(conn, operation_id, OperationStatus.FAILED, f"{code}: {message}")
        action = "capture" if operation.kind == OperationKind.CAPTURE else "cancel"
        detail = {"failureCode": code, "failureMessage": message}
        clear_pending_action(
            conn, payment, f"payment.{action}_failed", source=source, detail=detail
        )


def apply_refund_outcome(
    pool: ConnectionPool[Any],
    refund_id: str,
    status: RefundStatus,
    *,
    source: EventSource,
    operation_id: str | None = None,
    psp_reference: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
    detail: Detail | None = None,
) -> None:
    with acting(pool, actor_of(source)) as conn:
        refund = load_refund(conn, refund_id)
        if refund is None:
            return
        payment = load_payment(conn, refund.payment_id, for_update=True)
        refund = load_refund(conn, refund_id, for_update=True)
        if payment is None or refund is None or refund.status != RefundStatus.PENDING:
            return
        if operation_id is None:
            pending = pending_refund_operation(conn, refund_id)
            operation_id = pending.id if pending else None
        change: Change | None = None
        if status is RefundStatus.SUCCEEDED:
            try:
                change = refund_succeeded(payment.state(), refund.amount)
            except InconsistentPspAnswer as error:
                _flag(conn, payment.id, operation_id, str(error), source)
                return
        if operation_id is not None:
            done = OperationStatus.SUCCEEDED if change is not None else OperationStatus.FAILED
            finish_operation(conn, operation_id, done, failure_code)
        payment = settle_refund(
            conn,
            refund,
            payment,
            status,
            source=source,
            psp_reference=psp_reference,
            failure_code=failure_code,
            failure_message=failure_message,
        )
        if change is not None:
            detail = {"refundId": refund_id, **(detail or {})}
            record_change(conn, payment, change, source=source, detail=detail)
            entry = refund_entry(refund_id, payment.id, refund.amount, payment.currency)
            post_entry(conn, payment.merchant_id, entry)


def flag(
    pool: ConnectionPool[Any],
    payment_id: str,
    operation_id: str | None,
    reason: str,
    *,
    source: EventSource,
) -> None:
    """Nothing more can be learned by asking: the payment is flagged for
    reconciliation, visible in the API, and never failed without evidence."""
    with acting(pool, actor_of(source)) as conn:
        _flag(conn, payment_id, operation_id, reason, source)


def actor_of(source: EventSource) -> str:
    """Who the audit log says acted, for each source of a change."""
    roles = {
        EventSource.PSP: "worker",
        EventSource.WEBHOOK: "psp-webhook",
        EventSource.JANITOR: "janitor",
        EventSource.RECONCILIATION: "reconciliation",
        EventSource.API: "api",
    }
    return system(roles[source])


def answered_kind(fact: PspFact, status: PaymentStatus) -> OperationKind:
    """Which of our calls a PSP fact answers, given where the payment stands."""
    if isinstance(fact, Voided):
        return OperationKind.VOID
    if isinstance(fact, Captured) and status is PaymentStatus.AUTHORIZED:
        return OperationKind.CAPTURE
    return OperationKind.AUTHORIZE


def _still_pending(conn: Connection[Any], operation_id: str) -> bool:
    operation = load_operation(conn, operation_id, for_update=True)
    return operation is not None and operation.status == OperationStatus.PENDING


def _flag(
    conn: Connection[Any],
    payment_id: str,
    operation_id: str | None,
    reason: str,
    source: EventSource,
) -> None:
    payment = load_payment(conn, payment_id, for_update=True)
    if payment is None:
        return
    if operation_id is not None:
        if not _still_pending(conn, operation_id):
            return  # settled meanwhile: nothing to flag
        flag_operation(conn, operation_id, reason)
    if not payment.requires_reconciliation:
        flag_for_reconciliation(conn, payment, reason, source=source)
