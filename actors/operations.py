"""drive_operation: take one PSP operation (authorize, capture, void, refund)
as far as the PSP lets us.

A message is only a nudge ("look at operation X"). The actor re-reads the
operation from Postgres and does nothing if it is closed. Otherwise it counts
the try (committed first, so a crash mid-call is visible), and if an earlier
try may have reached the PSP it asks the PSP what happened before sending
anything again. Every send reuses the operation's own PSP idempotency key.
The payment stays PENDING until the PSP's word: an answer, an inquiry, a
webhook or the settlement report. Never a FAILED by guess.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

import dramatiq

from actors.errors import TryAgain
from actors.outcomes import apply_payment_fact, apply_refund_outcome, flag, refuse_action
from actors.queues import DRIVE_OPERATION, PAYMENTS_QUEUE
from actors.runtime import Runtime, runtime
from payments.lifecycle import Captured, Declined, Voided
from payments.operations import OperationKind, OperationStatus
from payments.records import PaymentRecord
from payments.status import CaptureMethod, EventSource, RefundStatus
from psp.facts import payment_fact
from psp.protocol import (
    Answered,
    AuthorizeRequest,
    CallResult,
    InquiryResult,
    NotFound,
    PspPayment,
    PspPaymentStatus,
    PspRefund,
    PspRefundStatus,
    Rejected,
    Retryable,
    Unknown,
)
from store.db import connection
from store.operations import OperationRow, get_operation, record_attempt, record_no_answer
from store.payments import get_payment_unscoped
from store.refunds import get_refund_unscoped
from telemetry.logs import bind_context

logger = logging.getLogger("paystream.actors.operations")
T = TypeVar("T")
Detail = dict[str, Any]


class Verdict(Enum):
    """What an answer from the PSP settles."""

    DONE = "done"  # written; the operation is closed or flagged
    NOT_APPLIED = "not_applied"  # the PSP shows no trace of it: safe to send
    UNDECIDED = "undecided"  # the PSP's state is one we cannot read: ask again later


@dramatiq.actor(queue_name=PAYMENTS_QUEUE, actor_name=DRIVE_OPERATION)
def drive_operation(operation_id: str, nudged_by: str = "api") -> None:
    """`nudged_by` is "janitor" when the janitor re-drives a stalled operation:
    what it then learns is written with the janitor as its source."""
    rt = runtime()
    with connection(rt.pool) as conn:
        operation = get_operation(conn, operation_id)
        if operation is None or operation.status != OperationStatus.PENDING:
            return
        payment = get_payment_unscoped(conn, operation.payment_id)
    assert payment is not None
    source = EventSource.JANITOR if nudged_by == "janitor" else EventSource.PSP
    kind = OperationKind(operation.kind)
    bind_context(payment_id=payment.id, operation_id=operation_id)
    logger.info("driving %s (nudged by %s), payment %s", kind, nudged_by, payment.status)
    if kind is OperationKind.AUTHORIZE:
        _authorize(rt, operation, payment, source)
    elif kind is OperationKind.REFUND:
        _refund(rt, operation, payment, source)
    else:
        _capture_or_void(rt, operation, payment, kind, source)


def _drive(
    rt: Runtime,
    operation: OperationRow,
    inquire: Callable[[], InquiryResult[T]],
    send: Callable[[], CallResult[T]],
    settle: Callable[[T, Detail], Verdict],
    refuse: Callable[[Rejected], None],
) -> None:
    """The shape every operation shares: ask first if an earlier try may have
    landed, send only when the PSP has no trace of it, write what it says."""
    if not rt.breaker.allows_call():
        raise TryAgain(f"{operation.id}: PSP circuit open")
    with connection(rt.pool) as conn:
        earlier_tries = record_attempt(conn, operation.id)
    if earlier_tries:
        found = inquire()
        rt.breaker.record(not isinstance(found, Retryable | Unknown))
        if isinstance(found, Retryable | Unknown):
            _no_answer(rt, operation, found, unknown=False)
        if isinstance(found, Answered):
            verdict = settle(
                found.value, {"learnedBy": "status_inquiry", "attempt": earlier_tries + 1}
            )
            if verdict is Verdict.DONE:
                return
            if verdict is Verdict.UNDECIDED:
                raise TryAgain(f"{operation.id}: the PSP's state cannot be read yet")
    result = send()
    rt.breaker.record(not isinstance(result, Retryable | Unknown))
    if isinstance(result, Answered):
        how = {"learnedBy": "psp_answer", "attempt": earlier_tries + 1}
        if settle(result.value, how) is not Verdict.DONE:
            raise TryAgain(f"{operation.id}: the PSP answered a state we cannot act on yet")
    elif isinstance(result, Rejected):
        refuse(result)
    else:
        _no_answer(rt, operation, result, unknown=isinstance(result, Unknown))


def _no_answer(
    rt: Runtime, operation: OperationRow, result: Retryable | Unknown, *, unknown: bool
) -> None:
    with connection(rt.pool) as conn:
        record_no_answer(conn, operation.id, result.reason, unknown=unknown)
    raise TryAgain(f"{operation.kind} {operation.id}: {result.reason}")


def _nudge(operation_ids: list[str]) -> None:
    for operation_id in operation_ids:
        drive_operation.send(operation_id)


# --- authorize ---------------------------------------------------------------


def _authorize(
    rt: Runtime, operation: OperationRow, payment: PaymentRecord, source: EventSource
) -> None:
    request = AuthorizeRequest(
        reference=payment.id,
        amount=payment.amount,
        currency=payment.currency,
        token=payment.method_token,
        capture=payment.capture_method == CaptureMethod.AUTOMATIC,
    )

    def settle(charge: PspPayment, how: Detail) -> Verdict:
        fact = payment_fact(charge)
        if fact is None:
            return Verdict.UNDECIDED
        failed = isinstance(fact, Declined)
        status = OperationStatus.FAILED if failed else OperationStatus.SUCCEEDED
        _nudge(
            apply_payment_fact(
                rt.pool,
                payment.id,
                fact,
                source=source,
                operation_id=operation.id,
                operation_status=status,
                detail=how,
                on_authorization=rt.card_testing.record,
            )
        )
        return Verdict.DONE

    def refuse(rejection: Rejected) -> None:
        # The PSP's word that nothing was charged.
        apply_payment_fact(
            rt.pool,
            payment.id,
            Declined(rejection.code, rejection.message),
            source=source,
            operation_id=operation.id,
            operation_status=OperationStatus.FAILED,
            on_authorization=rt.card_testing.record,
        )

    _drive(
        rt,
        operation,
        inquire=lambda: rt.psp.find_payment(payment.id),
        send=lambda: rt.psp.authorize(request, idempotency_key=operation.psp_key),
        settle=settle,
        refuse=refuse,
    )


# --- capture and void --------------------------------------------------------


def _capture_or_void(
    rt: Runtime,
    operation: OperationRow,
    payment: PaymentRecord,
    kind: OperationKind,
    source: EventSource,
) -> None:
    psp_reference = payment.psp_reference
    if psp_reference is None:
        flag(
            rt.pool,
            payment.id,
            operation.id,
            f"{kind} of a payment with no PSP reference",
            source=source,
        )
        return
    done_status = (
        PspPaymentStatus.CAPTURED if kind is OperationKind.CAPTURE else PspPaymentStatus.VOIDED
    )

    def settle(charge: PspPayment, how: Detail) -> Verdict:
        if charge.status is PspPaymentStatus.AUTHORIZED:
            return Verdict.NOT_APPLIED
        if charge.status is PspPaymentStatus.UNKNOWN:
            return Verdict.UNDECIDED
        if charge.status is not done_status:
            flag(
                rt.pool,
                payment.id,
                operation.id,
                f"{kind} asked, but the PSP shows the payment {charge.status}",
                source=source,
            )
            return Verdict.DONE
        fact = (
            Captured(charge.psp_reference, charge.authorized_amount, charge.captured_amount)
            if kind is OperationKind.CAPTURE
            else Voided(charge.psp_reference)
        )
        apply_payment_fact(
            rt.pool,
            payment.id,
            fact,
            source=source,
            operation_id=operation.id,
            detail=how,
        )
        return Verdict.DONE

    def inquire() -> InquiryResult[PspPayment]:
        found = rt.psp.find_payment(payment.id)
        if isinstance(found, NotFound):
            flag(
                rt.pool,
                payment.id,
                operation.id,
                "the PSP has no record of an authorized payment",
                source=source,
            )
            raise _Stop
        return found

    def send() -> CallResult[PspPayment]:
        if kind is OperationKind.CAPTURE:
            return rt.psp.capture(
                psp_reference, operation.amount, idempotency_key=operation.psp_key
            )
        return rt.psp.void(psp_reference, idempotency_key=operation.psp_key)

    def refuse(rejection: Rejected) -> None:
        refuse_action(rt.pool, operation.id, rejection.code, rejection.message, source=source)

    try:
        _drive(rt, operation, inquire, send, settle, refuse)
    except _Stop:
        return


class _Stop(Exception):
    """The operation was flagged mid-way: nothing more to do."""


# --- refund ------------------------------------------------------------------


def _refund(
    rt: Runtime, operation: OperationRow, payment: PaymentRecord, source: EventSource
) -> None:
    refund_id = operation.refund_id
    assert refund_id is not None
    with connection(rt.pool) as conn:
        refund = get_refund_unscoped(conn, refund_id)
    assert refund is not None and payment.psp_reference is not None
    psp_reference = payment.psp_reference

    def settle(answer: PspRefund, how: Detail) -> Verdict:
        if answer.status is PspRefundStatus.UNKNOWN:
            return Verdict.UNDECIDED
        succeeded = answer.status is PspRefundStatus.SUCCEEDED
        apply_refund_outcome(
            rt.pool,
            refund_id,
            RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED,
            source=source,
            operation_id=operation.id,
            psp_reference=answer.psp_reference,
            failure_code=None if succeeded else (answer.failure_code or "refund_failed"),
            detail=how,
        )
        return Verdict.DONE

    def refuse(rejection: Rejected) -> None:
        apply_refund_outcome(
            rt.pool,
            refund_id,
            RefundStatus.FAILED,
            source=source,
            operation_id=operation.id,
            failure_code=rejection.code,
            failure_message=rejection.message,
        )

    _drive(
        rt,
        operation,
        inquire=lambda: rt.psp.find_refund(refund_id),
        send=lambda: rt.psp.refund(
            psp_reference, refund.amount, refund_id, idempotency_key=operation.psp_key
        ),
        settle=settle,
        refuse=refuse,
    )


__all__ = ["drive_operation"]
