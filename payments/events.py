"""Every event type paystream publishes, for merchants to subscribe to."""

from __future__ import annotations

EVENT_TYPES = frozenset(
    {
        "payment.created",
        "payment.authorized",
        "payment.captured",
        "payment.failed",
        "payment.canceled",
        "payment.refunded",
        "payment.partially_refunded",
        "payment.capture_requested",
        "payment.cancel_requested",
        "payment.capture_failed",
        "payment.cancel_failed",
        "payment.flagged_for_reconciliation",
        "refund.created",
        "refund.succeeded",
        "refund.failed",
    }
)
ALL_EVENTS = "*"


def subscribes(event_types: list[str], event_type: str) -> bool:
    return ALL_EVENTS in event_types or event_type in event_types
