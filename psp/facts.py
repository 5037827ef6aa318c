"""The PSP's view of a payment, translated into the facts `payments.lifecycle` takes."""

from __future__ import annotations

from datetime import timedelta
from typing import assert_never

from payments.lifecycle import ActionRequired
from payments.lifecycle import Authorized
from payments.lifecycle import Captured
from payments.lifecycle import Declined
from payments.lifecycle import PspFact
from payments.lifecycle import Voided
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus


def payment_fact(payment: PspPayment, *, action_expires_in: timedelta | None) -> PspFact | None:
    """None when the PSP's word decides nothing yet (a status we cannot
    read): ask again later. A customer to authenticate is ActionRequired,
    waited for `action_expires_in`; a reader that starts no waits (None:
    reconciliation, which acts on settled captures only) takes it as nothing
    decided."""
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
        case PspPaymentStatus.REQUIRES_ACTION:
            if action_expires_in is None:
                return None
            return ActionRequired(payment.psp_reference, payment.next_action_url, action_expires_in)
        case PspPaymentStatus.UNKNOWN:
            return None
        case _:
            assert_never(payment.status)
