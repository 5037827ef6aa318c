"""check_authentication: ask the PSP how a customer's authentication (3-D
Secure) ended, for a payment waiting in REQUIRES_ACTION, and write what it
says.

Asked by the merchant (`POST /payments/{id}/confirm`, once the customer is
back) and by the janitor (a callback lost on the way, a customer who never
came back). Past the payment's `action_expires_at`, a PSP that still waits
for the customer is first asked to cancel (its own word that nothing will be
charged), and the payment then fails as `authentication_expired`. A PSP
that cannot be reached decides nothing: the payment waits, and the janitor
asks again. Writes go through the same locked, forward-only writes as every
other source (`actors.outcomes`), so this crossing a callback or another
check changes the payment once.
"""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime

import dramatiq

from actors.errors import TryAgain
from actors.operations import drive_operation
from actors.outcomes import apply_payment_fact
from actors.outcomes import flag
from actors.queues import CHECK_AUTHENTICATION
from actors.queues import PAYMENTS_QUEUE
from actors.runtime import Runtime
from actors.runtime import runtime
from payments.lifecycle import Declined
from payments.operations import OperationStatus
from payments.operations import expiry_key
from payments.records import PaymentRecord
from payments.status import EventSource
from payments.status import PaymentStatus
from psp.breaker import CircuitBreaker
from psp.facts import payment_fact
from psp.protocol import Answered
from psp.protocol import Connector
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.protocol import UnknownConnector
from store.db import connection
from store.payments import get_payment_unscoped
from telemetry.logs import bind_context

logger = logging.getLogger("paystream.actors.authentication")


@dramatiq.actor(queue_name=PAYMENTS_QUEUE, actor_name=CHECK_AUTHENTICATION)
def check_authentication(payment_id: str, asked_by: str = "janitor") -> None:
    """`asked_by` is "api" for a merchant's confirm: a PSP out of reach is
    then asked again soon (the worker's retries); the janitor's own checks
    simply wait for its next sweep."""
    services = runtime()
    with connection(services.pool) as conn:
        payment = get_payment_unscoped(conn, payment_id)
    if payment is None or payment.status != PaymentStatus.REQUIRES_ACTION:
        return
    bind_context(payment_id=payment.id)
    source = EventSource.API if asked_by == "api" else EventSource.JANITOR
    try:
        connector, breaker = services.psp(payment.psp)
    except UnknownConnector as error:
        logger.error("%s; payment %s waits for it", error, payment.id)
        return
    answer = _ask(payment, connector, breaker)
    learned = {"learnedBy": "status_inquiry"}
    if answer is not None and _expired(payment, answer):
        answer = _cancel(services, payment, connector, breaker, source)
        learned = {"learnedBy": "psp_answer", "reason": "authentication expired"}
    if answer is None:
        if source is EventSource.API:
            raise TryAgain(f"{payment.id}: the PSP could not be asked how authentication ended")
        return
    _write(services, payment, answer, source, learned)


def _ask(
    payment: PaymentRecord, connector: Connector, breaker: CircuitBreaker
) -> PspPayment | None:
    """The PSP's view of the payment; None when it cannot be had now."""
    if not breaker.allows_call():
        return None
    found = connector.find_payment(payment.id, payment.psp_reference)
    breaker.record(not isinstance(found, Retryable | Unknown))
    if not isinstance(found, Answered):
        logger.info("authentication check of %s: no answer (%s)", payment.id, found)
        return None
    return found.value


def _expired(payment: PaymentRecord, answer: PspPayment) -> bool:
    """The PSP still waits for a customer whose time is up."""
    expires_at = payment.action_expires_at
    return (
        answer.status is PspPaymentStatus.REQUIRES_ACTION
        and expires_at is not None
        and datetime.now(UTC) >= expires_at
    )


def _cancel(
    services: Runtime,
    payment: PaymentRecord,
    connector: Connector,
    breaker: CircuitBreaker,
    source: EventSource,
) -> PspPayment | None:
    """Ask the PSP to give up on the customer: its answer (cancelled, or
    decided just then) is what the payment becomes; None when it did not say."""
    assert payment.psp_reference is not None  # REQUIRES_ACTION is set with it
    if not breaker.allows_call():
        return None
    result = connector.void(payment.psp_reference, idempotency_key=expiry_key(payment.id))
    breaker.record(not isinstance(result, Retryable | Unknown))
    if isinstance(result, Answered):
        return result.value
    if isinstance(result, Rejected):
        # It will not cancel: it may have decided meanwhile (the next check
        # reads that), or it never gives up; either way not ours to guess.
        reason = f"authentication expired; the PSP refused to cancel: {result.code}"
        flag(services.pool, payment.id, None, reason, source=source)
    logger.info("expired authentication of %s: the PSP did not cancel (%s)", payment.id, result)
    return None


def _write(
    services: Runtime,
    payment: PaymentRecord,
    answer: PspPayment,
    source: EventSource,
    learned: dict[str, str],
) -> None:
    fact = payment_fact(answer, action_expires_in=services.action_expires_in)
    if fact is None:
        return
    follow_ups = apply_payment_fact(
        services.pool,
        payment.id,
        fact,
        source=source,
        operation_status=(
            OperationStatus.FAILED if isinstance(fact, Declined) else OperationStatus.SUCCEEDED
        ),
        detail=learned,
        on_authorization=services.card_testing.record,
    )
    for operation_id in follow_ups:
        drive_operation.send(operation_id)


__all__ = ["check_authentication"]
