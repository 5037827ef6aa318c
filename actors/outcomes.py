"""Writing what the PSP said: each function is one transaction that locks the
payment first (then what hangs off it), decides with `payments.lifecycle`, and
writes the payment, its timeline, its outbox row and the operation together.
Whoever comes second (a duplicate message, a webhook, a janitor re-drive)
finds the work done and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from payments.errors import InconsistentPspAnswer
from payments.ledger import capture_entry
from payments.ledger import refund_entry
from payments.lifecycle import Captured
from payments.lifecycle import Change
from payments.lifecycle import PspFact
from payments.lifecycle import Voided
from payments.lifecycle import apply_fact
from payments.lifecycle import needs_capture_after_authorization
from payments.lifecycle import refund_succeeded
from payments.operations import OperationKind
from payments.operations import OperationStatus
from payments.records import PaymentRecord
from payments.records import TimelineEvent
from payments.status import AUTHORIZING
from payments.status import EventSource
from payments.status import PaymentStatus
from payments.status import RefundStatus
from store.audit import acting
from store.audit import system
from store.ledger import post_entry
from store.operations import finish_operation
from store.operations import flag_operation
from store.operations import get_operation
from store.operations import pending_operation
from store.operations import pending_refund_operation
from store.payment_changes import clear_reconciliation_flag
from store.payment_changes import flag_for_reconciliation
from store.payment_changes import record_action_refused
from store.payment_changes import record_change
from store.payment_changes import request_action
from store.payments import get_payment_unscoped
from store.refunds import get_refund_unscoped
from store.refunds import settle_refund
from store.webhook_inbox import settle_inbox
from telemetry.metrics import count_transitions

Detail = dict[str, Any]


@dataclass
class Applied:
    """What writing a PSP fact did: the timeline events it wrote, of which
    payment (counted once committed), the operations to nudge once
    committed, and the authorization outcome it settled (key id, declined),
    if any."""

    payment: PaymentRecord | None = None
    events: list[TimelineEvent] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    authorization: tuple[str, bool] | None = None

    def wrote(self, payment: PaymentRecord, events: list[TimelineEvent]) -> Applied:
        self.payment = payment
        self.events += events
        return self

    def count(self) -> None:
        """For the metrics, once the transaction that wrote them has committed."""
        if self.payment is not None:
            count_transitions(self.payment, self.events)


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
    from_inbox: str | None = None,
) -> list[str]:
    """Write a PSP fact about a payment and close the operation it answers.
    Returns operations to nudge once committed (the capture of an automatic
    payment the PSP only authorized). `on_authorization(key id, declined)`
    hears, after commit, of the authorization outcome this fact settled.
    A fact read from a PSP callback settles its inbox row in the same
    transaction (`from_inbox`)."""
    with acting(pool, actor_of(source)) as conn:
        applied = _apply_payment_fact(
            conn, payment_id, fact, source, operation_id, operation_status, detail
        )
        if from_inbox is not None:
            settle_inbox(conn, from_inbox, "applied")
    applied.count()
    if applied.authorization is not None and on_authorization is not None:
        on_authorization(*applied.authorization)
    return applied.follow_ups


def _apply_payment_fact(
    conn: Connection[Any],
    payment_id: str,
    fact: PspFact,
    source: EventSource,
    operation_id: str | None,
    operation_status: OperationStatus,
    detail: Detail | None,
) -> Applied:
    applied = Applied()
    payment = get_payment_unscoped(conn, payment_id, for_update=True)
    if payment is None:
        return applied
    applied.payment = payment
    answers_call = operation_id is not None
    if operation_id is None:
        # A webhook or the settlement report: it answers the pending call of
        # its kind, if any.
        kind = answered_kind(fact, PaymentStatus(payment.status))
        pending = pending_operation(conn, payment_id, kind)
        operation_id = pending.id if pending else None
    try:
        change = apply_fact(payment.state(), fact)
    except InconsistentPspAnswer as error:
        applied.events += _flag(conn, payment, operation_id, str(error), source)
        return applied
    if operation_id is not None:
        closed = finish_operation(conn, operation_id, operation_status)
        # For the answer to a call, closing it is also the test that it was
        # still open: whoever closed it first wrote this fact already.
        if answers_call and not closed:
            return applied
    if change is not None:
        if _authorization_ended(payment, change) and payment.api_key_id:
            applied.authorization = (payment.api_key_id, change.status == PaymentStatus.FAILED)
        payment, event = record_change(conn, payment, change, source=source, detail=detail)
        applied.events.append(event)
        if payment.requires_reconciliation:
            payment = clear_reconciliation_flag(conn, payment)
        if payment.status == PaymentStatus.CAPTURED:
            entry = capture_entry(payment.id, payment.captured_amount, payment.currency)
            post_entry(conn, payment.merchant_id, entry, psp=payment.psp)
    if needs_capture_after_authorization(payment.state()) and payment.pending_action is None:
        capture = request_action(
            conn, payment, OperationKind.CAPTURE, payment.authorized_amount, source=source
        )
        applied.events.append(capture.event)
        applied.follow_ups.append(capture.operation_id)
    return applied


def _authorization_ended(payment: PaymentRecord, change: Change) -> bool:
    """The change tells how the authorization ended (a customer asked to
    authenticate has not ended it yet)."""
    return payment.status in AUTHORIZING and change.status not in AUTHORIZING


def refuse_action(
    pool: ConnectionPool[Any], operation_id: str, code: str, message: str, *, source: EventSource
) -> None:
    """The PSP refused a capture or a void: the payment stays as it was, and
    the merchant sees why in the timeline."""
    with acting(pool, actor_of(source)) as conn:
        applied = _refuse_action(conn, operation_id, code, message, source)
    applied.count()


def _refuse_action(
    conn: Connection[Any], operation_id: str, code: str, message: str, source: EventSource
) -> Applied:
    operation = get_operation(conn, operation_id)
    if operation is None:
        return Applied()
    payment = get_payment_unscoped(conn, operation.payment_id, for_update=True)
    if payment is None or not _still_pending(conn, operation_id):
        return Applied()
    finish_operation(conn, operation_id, OperationStatus.FAILED, f"{code}: {message}")
    detail = {"failureCode": code, "failureMessage": message}
    kind = OperationKind(operation.kind)
    refused = record_action_refused(conn, payment, kind, source=source, detail=detail)
    return Applied().wrote(payment, [refused.event])


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
    from_inbox: str | None = None,
) -> None:
    """Write how a refund ended and close the operation it answers; as
    `apply_payment_fact`, a callback's inbox row is settled with it."""
    with acting(pool, actor_of(source)) as conn:
        applied = _apply_refund_outcome(
            conn,
            refund_id,
            status,
            source,
            operation_id,
            psp_reference,
            failure_code,
            failure_message,
            detail,
        )
        if from_inbox is not None:
            settle_inbox(conn, from_inbox, "applied")
    applied.count()


def _apply_refund_outcome(
    conn: Connection[Any],
    refund_id: str,
    status: RefundStatus,
    source: EventSource,
    operation_id: str | None,
    psp_reference: str | None,
    failure_code: str | None,
    failure_message: str | None,
    detail: Detail | None,
) -> Applied:
    refund = get_refund_unscoped(conn, refund_id)
    if refund is None:
        return Applied()
    payment = get_payment_unscoped(conn, refund.payment_id, for_update=True)
    refund = get_refund_unscoped(conn, refund_id, for_update=True)
    if payment is None or refund is None or refund.status != RefundStatus.PENDING:
        return Applied()
    if operation_id is None:
        pending = pending_refund_operation(conn, refund_id)
        operation_id = pending.id if pending else None
    change: Change | None = None
    if status is RefundStatus.SUCCEEDED:
        try:
            change = refund_succeeded(payment.state(), refund.amount)
        except InconsistentPspAnswer as error:
            return Applied().wrote(payment, _flag(conn, payment, operation_id, str(error), source))
    if operation_id is not None:
        done = OperationStatus.SUCCEEDED if change is not None else OperationStatus.FAILED
        finish_operation(conn, operation_id, done, failure_code)
    payment, settled = settle_refund(
        conn,
        refund,
        payment,
        status,
        source=source,
        psp_reference=psp_reference,
        failure_code=failure_code,
        failure_message=failure_message,
    )
    if change is None:
        return Applied().wrote(payment, [settled])
    detail = {"refundId": refund_id, **(detail or {})}
    payment, moved = record_change(conn, payment, change, source=source, detail=detail)
    entry = refund_entry(refund_id, payment.id, refund.amount, payment.currency)
    post_entry(conn, payment.merchant_id, entry, psp=payment.psp)
    return Applied().wrote(payment, [settled, moved])


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
        payment = get_payment_unscoped(conn, payment_id, for_update=True)
        if payment is None:
            return
        events = _flag(conn, payment, operation_id, reason, source)
    count_transitions(payment, events)


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
    operation = get_operation(conn, operation_id, for_update=True)
    return operation is not None and operation.status == OperationStatus.PENDING


def _flag(
    conn: Connection[Any],
    payment: PaymentRecord,
    operation_id: str | None,
    reason: str,
    source: EventSource,
) -> list[TimelineEvent]:
    """Flag a payment the caller has locked."""
    if operation_id is not None:
        if not _still_pending(conn, operation_id):
            return []  # settled meanwhile: nothing to flag
        flag_operation(conn, operation_id, reason)
    if payment.requires_reconciliation:
        return []
    return [flag_for_reconciliation(conn, payment, reason, source=source).event]
