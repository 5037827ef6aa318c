"""The merchant-facing shape of payments and events (camelCase JSON).

One function per resource, used by the API responses and by the event
payloads written to the outbox, so both always say the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from payments.records import PaymentRecord, RefundRecord, TimelineEvent


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. 2026-11-24T10:52:00.123Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def payment_resource(payment: PaymentRecord) -> dict[str, Any]:
    return {
        "paymentId": payment.id,
        "orderId": payment.order_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "captureMethod": payment.capture_method,
        "description": payment.description,
        "metadata": payment.metadata,
        "authorizedAmount": payment.authorized_amount,
        "capturedAmount": payment.captured_amount,
        "refundedAmount": payment.refunded_amount,
        "pendingRefundAmount": payment.refund_reserved_amount - payment.refunded_amount,
        "pendingAction": payment.pending_action,
        "requiresReconciliation": payment.requires_reconciliation,
        "reconciliationReason": payment.reconciliation_reason,
        "psp": payment.psp,
        "pspReference": payment.psp_reference,
        "failureCode": payment.failure_code,
        "failureMessage": payment.failure_message,
        "createdAt": timestamp(payment.created_at),
        "updatedAt": timestamp(payment.updated_at),
    }


def event_envelope(
    event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """What the event stream and merchant webhooks carry for one event."""
    return {"id": event_id, "type": event_type, "createdAt": timestamp(created_at), "data": data}


def timeline_event_resource(event: TimelineEvent) -> dict[str, Any]:
    return {
        "eventId": event.id,
        "type": event.type,
        "fromStatus": event.from_status,
        "toStatus": event.to_status,
        "source": event.source,
        "detail": event.detail,
        "createdAt": timestamp(event.created_at),
    }


def refund_resource(refund: RefundRecord) -> dict[str, Any]:
    return {
        "refundId": refund.id,
        "paymentId": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "reason": refund.reason,
        "pspReference": refund.psp_reference,
        "failureCode": refund.failure_code,
        "failureMessage": refund.failure_message,
        "createdAt": timestamp(refund.created_at),
        "updatedAt": timestamp(refund.updated_at),
    }
