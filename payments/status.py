"""Payment and refund statuses, and the order in which a payment may move."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    # The PSP asks the customer to authenticate (3-D Secure): see `nextAction`.
    REQUIRES_ACTION = "REQUIRES_ACTION"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    CANCELED = "CANCELED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class CaptureMethod(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class EventSource(StrEnum):
    """Who caused a transition; shown in a payment's timeline."""

    API = "api"
    PSP = "psp"
    WEBHOOK = "webhook"
    JANITOR = "janitor"
    RECONCILIATION = "reconciliation"


# The only moves a payment can make. Everything else is refused, which is what
# makes late, duplicated and reordered PSP news harmless.
ALLOWED_MOVES: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {
            PaymentStatus.REQUIRES_ACTION,
            PaymentStatus.AUTHORIZED,
            PaymentStatus.CAPTURED,
            PaymentStatus.FAILED,
        }
    ),
    # Left on the PSP's word of how the customer's authentication ended.
    PaymentStatus.REQUIRES_ACTION: frozenset(
        {PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED, PaymentStatus.FAILED}
    ),
    PaymentStatus.AUTHORIZED: frozenset({PaymentStatus.CAPTURED, PaymentStatus.CANCELED}),
    PaymentStatus.CAPTURED: frozenset({PaymentStatus.REFUNDED}),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
    PaymentStatus.CANCELED: frozenset(),
}


# Where the authorization has not ended yet: a decline fails the payment from here.
AUTHORIZING = frozenset({PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION})


def can_move(current: PaymentStatus, target: PaymentStatus) -> bool:
    return target in ALLOWED_MOVES[current]
