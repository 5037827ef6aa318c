"""The PSP's view of a payment, translated into the facts `payments.lifecycle` takes."""

from __future__ import annotations

from payments.lifecycle import Authorized, Captured, Declined, PspFact, Voided
from psp.protocol import PspPayment, PspPaymentStatus


def payment_fact(payment: PspPayment) -> PspFact | None:
    """None when the PSP's status is one we do not know: nothing is decided on it."""
    if payment.status is PspPaymentStatus.AUTHORIZED:
        return Authorized(payment.psp_reference, payment.authorized_amount)
    if payment.status is PspPaymentStatus.CAPTURED:
        return Captured(payment.psp_reference, payment.authorized_amount, payment.captured_amount)
    if payment.status is PspPaymentStatus.DECLINED:
        return Declined(
            payment.decline_code or "declined", payment.decline_message or "The PSP declined."
        )
    if payment.status is PspPaymentStatus.VOIDED:
        return Voided(payment.psp_reference)
    return None
