"""Every event type paystream publishes, for merchants to subscribe to: the
timeline's types, which the outbox carries to the event stream."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    PAYMENT_CREATED = "payment.created"
    PAYMENT_REQUIRES_ACTION = "payment.requires_action"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CAPTURED = "payment.captured"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_CANCELED = "payment.canceled"
    PAYMENT_REFUNDED = "payment.refunded"
    PAYMENT_PARTIALLY_REFUNDED = "payment.partially_refunded"
    PAYMENT_CAPTURE_REQUESTED = "payment.capture_requested"
    PAYMENT_CANCEL_REQUESTED = "payment.cancel_requested"
    PAYMENT_CAPTURE_FAILED = "payment.capture_failed"
    PAYMENT_CANCEL_FAILED = "payment.cancel_failed"
    PAYMENT_FLAGGED_FOR_RECONCILIATION = "payment.flagged_for_reconciliation"
    REFUND_CREATED = "refund.created"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"


EVENT_TYPES = frozenset(EventType)
ALL_EVENTS = "*"

# A merchant's capture or cancel (a payment's pending action): asked, and refused by the PSP.
ACTION_REQUESTED = {
    "capture": EventType.PAYMENT_CAPTURE_REQUESTED,
    "cancel": EventType.PAYMENT_CANCEL_REQUESTED,
}
ACTION_REFUSED = {
    "capture": EventType.PAYMENT_CAPTURE_FAILED,
    "cancel": EventType.PAYMENT_CANCEL_FAILED,
}


def subscribes(event_types: list[str], event_type: str) -> bool:
    return ALL_EVENTS in event_types or event_type in event_types
