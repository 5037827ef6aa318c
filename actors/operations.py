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
from dataclasses import dataclass
from enum import Enum
from typing import Any
from typing import NoReturn
from typing import assert_never

import dramatiq

from actors.errors import TryAgain
from actors.outcomes import apply_payment_fact
from actors.outcomes import apply_refund_outcome
from actors.outcomes import flag
from actors.outcomes import refuse_action
from actors.queues import DRIVE_OPERATION
from actors.queues import PAYMENTS_QUEUE
from actors.runtime import Runtime
from actors.runtime import runtime
from payments.lifecycle import Captured
from payments.lifecycle import Declined
from payments.lifecycle import Voided
from payments.operations import OperationKind
from payments.operations import OperationStatus
from payments.records import PaymentRecord
from payments.status import CaptureMethod
from payments.status import EventSource
from payments.status import RefundStatus
from psp.breaker import CircuitBreaker
from psp.facts import payment_fact
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import CallResult
from psp.protocol import Connector
from psp.protocol import InquiryResult
from psp.protocol import NotFound
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefund
from psp.protocol import PspRefundStatus
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.protocol import UnknownConnector
from store.db import connection
from store.operations import OperationRow
from store.operations import get_operation_with_payment
from store.operations import record_attempt
from store.operations import record_no_answer
from telemetry.logs import bind_context

logger = logging.getLogger("paystream.actors.operations")
Detail = dict[str, Any]
# Operations on an authorization the PSP holds, by its reference.
_ON_AUTHORIZATION = (OperationKind.CAPTURE, OperationKind.VOID)


class Verdict(Enum):
    """What an answer from the PSP settles."""

    DONE = "done"  # written; the operation is closed or flagged
    NOT_APPLIED = "not_applied"  # the PSP shows no trace of it: safe to send
    UNDECIDED = "undecided"  # the PSP's state is one we cannot read: ask again later


@dataclass(frozen=True, slots=True)
class Drive:
    """One operation being driven: what the actor works with, the operation,
    its payment, the source its outcome is written with, and the payment's
    own PSP (its connector and breaker): every call of it goes there."""

    services: Runtime
    operation: OperationRow
    payment: PaymentRecord
    source: EventSource
    connector: Connector
    breaker: CircuitBreaker

    @property
    def kind(self) -> OperationKind:
        return OperationKind(self.operation.kind)


@dramatiq.actor(queue_name=PAYMENTS_QUEUE, actor_name=DRIVE_OPERATION)
def drive_operation(operation_id: str, nudged_by: str = "api") -> None:
    """`nudged_by` is "janitor" when the janitor re-drives a stalled operation:
    what it then learns is written with the janitor as its source."""
    services = runtime()
    with connection(services.pool) as conn:
        found = get_operation_with_payment(conn, operation_id)
    if found is None or found[0].status != OperationStatus.PENDING:
        return
    operation, payment = found
    source = EventSource.JANITOR if nudged_by == "janitor" else EventSource.PSP
    bind_context(payment_id=payment.id, operation_id=operation_id)
    try:
        connector, breaker = services.psp(payment.psp)
    except UnknownConnector as error:
        # A deployment that dropped a PSP its payments still need: they wait
        # for it (the janitor keeps coming back), and are never sent elsewhere.
        logger.error("%s; payment %s waits for it", error, payment.id)
        raise TryAgain(f"{operation_id}: {error}") from None
    drive = Drive(services, operation, payment, source, connector, breaker)
    logger.info("driving %s (nudged by %s), payment %s", drive.kind, nudged_by, payment.status)
    if drive.kind in _ON_AUTHORIZATION and payment.psp_reference is None:
        _flag(drive, f"{drive.kind} of a payment with no PSP reference")
        return
    _drive(drive)


def _drive(drive: Drive) -> None:
    """The shape every operation shares: ask first if an earlier try may have
    landed, send only when the PSP has no trace of it, write what it says."""
    operation, breaker = drive.operation, drive.breaker
    if not breaker.allows_call():
        raise TryAgain(f"{operation.id}: PSP {breaker.psp} circuit open")
    with connection(drive.services.pool) as conn:
        earlier_tries = record_attempt(conn, operation.id)
    if earlier_tries and _settled_by_inquiry(drive, earlier_tries):
        return
    result = _send(drive)
    breaker.record(not isinstance(result, Retryable | Unknown))
    if isinstance(result, Answered):
        learned = {"learnedBy": "psp_answer", "attempt": earlier_tries + 1}
        if _settle(drive, result.value, learned) is not Verdict.DONE:
            raise TryAgain(f"{operation.id}: the PSP answered a state we cannot act on yet")
    elif isinstance(result, Rejected):
        _refuse(drive, result)
    else:
        _no_answer(drive, result, unknown=isinstance(result, Unknown))


def _settled_by_inquiry(drive: Drive, earlier_tries: int) -> bool:
    """An earlier try may have reached the PSP: ask it. True when its answer
    settles the operation; False when it has no trace of it (safe to send)."""
    found = _inquire(drive)
    if isinstance(found, NotFound) and drive.kind in _ON_AUTHORIZATION:
        _flag(drive, "the PSP has no record of an authorized payment")
        return True
    drive.breaker.record(not isinstance(found, Retryable | Unknown))
    if isinstance(found, Retryable | Unknown):
        _no_answer(drive, found, unknown=False)
    if not isinstance(found, Answered):
        return False
    learned = {"learnedBy": "status_inquiry", "attempt": earlier_tries + 1}
    verdict = _settle(drive, found.value, learned)
    if verdict is Verdict.UNDECIDED:
        raise TryAgain(f"{drive.operation.id}: the PSP's state cannot be read yet")
    return verdict is Verdict.DONE


def _no_answer(drive: Drive, result: Retryable | Unknown, *, unknown: bool) -> NoReturn:
    operation = drive.operation
    with connection(drive.services.pool) as conn:
        record_no_answer(conn, operation.id, result.reason, unknown=unknown)
    raise TryAgain(f"{operation.kind} {operation.id}: {result.reason}")


def _flag(drive: Drive, reason: str) -> None:
    flag(drive.services.pool, drive.payment.id, drive.operation.id, reason, source=drive.source)


# --- the PSP calls, by kind ----------------------------------------------------


def _inquire(drive: Drive) -> InquiryResult[PspPayment] | InquiryResult[PspRefund]:
    psp = drive.connector
    if drive.kind is OperationKind.REFUND:
        return psp.find_refund(_refund_id(drive.operation))
    return psp.find_payment(drive.payment.id, drive.payment.psp_reference)


def _send(drive: Drive) -> CallResult[PspPayment] | CallResult[PspRefund]:
    psp, operation, payment = drive.connector, drive.operation, drive.payment
    key = operation.psp_key
    if drive.kind is OperationKind.AUTHORIZE:
        request = AuthorizeRequest(
            reference=payment.id,
            amount=payment.amount,
            currency=payment.currency,
            token=payment.method_token,
            capture=payment.capture_method == CaptureMethod.AUTOMATIC,
            return_url=payment.return_url,
        )
        return psp.authorize(request, idempotency_key=key)
    psp_reference = payment.psp_reference
    assert psp_reference is not None
    if drive.kind is OperationKind.CAPTURE:
        return psp.capture(psp_reference, operation.amount, idempotency_key=key)
    if drive.kind is OperationKind.VOID:
        return psp.void(psp_reference, idempotency_key=key)
    refund_id = _refund_id(operation)
    return psp.refund(psp_reference, operation.amount, refund_id, idempotency_key=key)


def _refund_id(operation: OperationRow) -> str:
    assert operation.refund_id is not None
    return operation.refund_id


# --- what the PSP said, by kind --------------------------------------------------


def _settle(drive: Drive, answer: PspPayment | PspRefund, learned: Detail) -> Verdict:
    if isinstance(answer, PspRefund):
        return _settle_refund(drive, answer, learned)
    if drive.kind is OperationKind.AUTHORIZE:
        return _settle_authorization(drive, answer, learned)
    return _settle_capture_or_void(drive, answer, learned)


def _settle_authorization(drive: Drive, charge: PspPayment, learned: Detail) -> Verdict:
    # A customer to authenticate ends the call (the PSP answered): the
    # payment waits in REQUIRES_ACTION for the PSP's word on how it ended.
    fact = payment_fact(charge, action_expires_in=drive.services.action_expires_in)
    if fact is None:
        return Verdict.UNDECIDED
    failed = isinstance(fact, Declined)
    follow_ups = apply_payment_fact(
        drive.services.pool,
        drive.payment.id,
        fact,
        source=drive.source,
        operation_id=drive.operation.id,
        operation_status=OperationStatus.FAILED if failed else OperationStatus.SUCCEEDED,
        detail=learned,
        on_authorization=drive.services.card_testing.record,
    )
    for operation_id in follow_ups:
        drive_operation.send(operation_id)
    return Verdict.DONE


def _settle_capture_or_void(drive: Drive, charge: PspPayment, learned: Detail) -> Verdict:
    capture = drive.kind is OperationKind.CAPTURE
    fact: Captured | Voided
    match charge.status:
        case PspPaymentStatus.AUTHORIZED:
            return Verdict.NOT_APPLIED
        case PspPaymentStatus.REQUIRES_ACTION | PspPaymentStatus.UNKNOWN:
            return Verdict.UNDECIDED
        case PspPaymentStatus.CAPTURED if capture:
            fact = Captured(charge.psp_reference, charge.authorized_amount, charge.captured_amount)
        case PspPaymentStatus.VOIDED if not capture:
            fact = Voided(charge.psp_reference)
        case PspPaymentStatus.CAPTURED | PspPaymentStatus.VOIDED | PspPaymentStatus.DECLINED:
            _flag(drive, f"{drive.kind} asked, but the PSP shows the payment {charge.status}")
            return Verdict.DONE
        case _:
            assert_never(charge.status)
    apply_payment_fact(
        drive.services.pool,
        drive.payment.id,
        fact,
        source=drive.source,
        operation_id=drive.operation.id,
        detail=learned,
    )
    return Verdict.DONE


def _settle_refund(drive: Drive, answer: PspRefund, learned: Detail) -> Verdict:
    if answer.status is PspRefundStatus.UNKNOWN:
        return Verdict.UNDECIDED
    succeeded = answer.status is PspRefundStatus.SUCCEEDED
    apply_refund_outcome(
        drive.services.pool,
        _refund_id(drive.operation),
        RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED,
        source=drive.source,
        operation_id=drive.operation.id,
        psp_reference=answer.psp_reference,
        failure_code=None if succeeded else (answer.failure_code or "refund_failed"),
        detail=learned,
    )
    return Verdict.DONE


def _refuse(drive: Drive, rejection: Rejected) -> None:
    """The PSP's word that it did not do it."""
    pool, operation = drive.services.pool, drive.operation
    if drive.kind is OperationKind.AUTHORIZE:
        # Nothing was charged.
        apply_payment_fact(
            pool,
            drive.payment.id,
            Declined(rejection.code, rejection.message),
            source=drive.source,
            operation_id=operation.id,
            operation_status=OperationStatus.FAILED,
            on_authorization=drive.services.card_testing.record,
        )
    elif drive.kind is OperationKind.REFUND:
        apply_refund_outcome(
            pool,
            _refund_id(operation),
            RefundStatus.FAILED,
            source=drive.source,
            operation_id=operation.id,
            failure_code=rejection.code,
            failure_message=rejection.message,
        )
    else:
        refuse_action(pool, operation.id, rejection.code, rejection.message, source=drive.source)


__all__ = ["drive_operation"]
