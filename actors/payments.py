"""drive_payment: look at a payment in Postgres and take its next PSP step.

A message is only a nudge ("look at payment X"): the actor re-reads the payment,
does nothing if it has moved on, and otherwise calls the PSP under a key derived
from the payment, so running it twice, or in two workers at once, charges once.
"""

from __future__ import annotations

import logging

import dramatiq

from actors.errors import TryAgain
from actors.queues import DRIVE_PAYMENT, PAYMENTS_QUEUE
from actors.runtime import Runtime, runtime
from payments.lifecycle import Declined, PspFact, apply_fact
from payments.status import CaptureMethod, EventSource, PaymentStatus
from psp.facts import payment_fact
from psp.protocol import Answered, AuthorizeRequest, Rejected, Retryable, Unknown
from store.db import sync_connection
from store.payments import load_payment, record_change
from store.rows import PaymentRow

logger = logging.getLogger("paystream.actors.payments")


def authorization_key(payment_id: str) -> str:
    """Our PSP idempotency key for a payment's authorization: every retry of it
    reuses this key, so the PSP books it once."""
    return f"{payment_id}:authorize"


@dramatiq.actor(
    queue_name=PAYMENTS_QUEUE,
    actor_name=DRIVE_PAYMENT,
    max_retries=20,
    # Payments wait seconds to minutes, not Dramatiq's default 15 s to 7 days.
    min_backoff=250,
    max_backoff=60_000,
    retry_when=lambda retries, error: isinstance(error, TryAgain) and retries < 20,
)
def drive_payment(payment_id: str) -> None:
    rt = runtime()
    with sync_connection(rt.pool) as conn:
        payment = load_payment(conn, payment_id)
    if payment is None:
        logger.warning("drive_payment: no payment %s", payment_id)
        return
    if payment.status == PaymentStatus.PENDING:
        authorize(rt, payment)


def authorize(rt: Runtime, payment: PaymentRow) -> None:
    request = AuthorizeRequest(
        reference=payment.id,
        amount=payment.amount,
        currency=payment.currency,
        token=payment.method_token,
        capture=payment.capture_method == CaptureMethod.AUTOMATIC,
    )
    result = rt.psp.authorize(request, idempotency_key=authorization_key(payment.id))
    if isinstance(result, Answered):
        fact = payment_fact(result.value)
        if fact is None:
            raise TryAgain(f"PSP status {result.value.status} for {payment.id} is not known")
        apply_psp_fact(rt, payment.id, fact, source=EventSource.PSP)
    elif isinstance(result, Rejected):
        # The PSP's word that nothing was charged.
        apply_psp_fact(
            rt, payment.id, Declined(result.code, result.message), source=EventSource.PSP
        )
    elif isinstance(result, Retryable | Unknown):
        raise TryAgain(f"authorization of {payment.id}: {result.reason}")


def apply_psp_fact(rt: Runtime, payment_id: str, fact: PspFact, *, source: EventSource) -> None:
    """Write what the PSP told us, under the payment's row lock, if it still
    changes anything: a late or repeated fact is a no-op."""
    with sync_connection(rt.pool) as conn, conn.transaction():
        payment = load_payment(conn, payment_id, for_update=True)
        if payment is None:
            return
        change = apply_fact(payment.state(), fact)
        if change is not None:
            record_change(conn, payment, change, source=source)
