"""What a PSP's webhook says, read as untrusted input: a payment's or a
refund's state, mapped the same way as the PSP's API answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psp.http_client import payment_from_json, refund_from_json
from psp.protocol import PspPayment, PspRefund

_PAYMENT_EVENTS = frozenset(
    {"payment.authorized", "payment.captured", "payment.declined", "payment.voided"}
)
_REFUND_EVENTS = frozenset({"refund.succeeded", "refund.failed"})


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    payment: PspPayment


@dataclass(frozen=True, slots=True)
class RefundEvent:
    refund: PspRefund


PspEvent = PaymentEvent | RefundEvent


def parse_event(payload: dict[str, Any]) -> PspEvent | None:
    """None for an event type we do not act on; ValueError when malformed."""
    event_type, data = payload.get("type"), payload.get("data")
    if not isinstance(data, dict):
        raise ValueError("the event has no data object")
    try:
        if event_type in _PAYMENT_EVENTS:
            return PaymentEvent(payment_from_json(data))
        if event_type in _REFUND_EVENTS:
            return RefundEvent(refund_from_json(data))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed {event_type} event: {error}") from None
    return None
