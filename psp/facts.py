"""The PSP's view of a payment, translated into the facts `payments.lifecycle` takes."""

from __future__ import annotations

from typing import assert_never

from payments.lifecycle import Authorized, Captured, Declined, PspFact, Voided
from psp.protocol import PspPayment, PspPaymentStatus


def payment_fact(payment: PspPayment) -> PspFact | None:
    """None when the PSP's word decides nothing yet: a status we cannot read,
    or a customer still to authenticate (REQUIRES_ACTION, until paystream
    has a status for it): ask again later."""
    match payment.status:
        case PspPaymentStatus.AUTHORIZED:
            return Authorized(payment.psp_reference, payment.authorized_amount)
        case PspPaymentStatus.CAPTURED:
            return Captured(
                payment.psp_reference, payment.authorized_amount, payment.captured_amount
            )
        case PspPaymentStatus.DECLINED:
            return Declined(
                payment.decline_code or "declined", payment.decline_message or "The PSP declined."
            )
        case PspPaymentStatus.VOIDED:
            return Voided(payment.psp_reference)
        case PspPaymentStatus.REQUIRES_ACTION | PspPaymentStatus.UNKNOWN:
            return None
        case _:
            assert_never(payment.status)
