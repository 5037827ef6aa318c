"""The merchant-facing shape of payments and events (camelCase JSON).

One function per resource, used by the API responses and by the event
payloads written to the outbox, so both always say the same thing.
"""

from __future__ import annotations

import functools
from datetime import UTC
from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_camel

from payments.records import PaymentRecord
from payments.records import RefundRecord
from payments.records import TimelineEvent
from payments.status import PaymentStatus


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. 2026-11-24T10:52:00.123Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def camel_fields(record: object, *names: str) -> dict[str, Any]:
    """The named fields of a record by their JSON names: camelCase by the API
    models' rule (`alias_generator=to_camel`), times as `timestamp`s. Each
    renderer names its fields; a whole row is never rendered (docs/security.md, API3)."""
    return {_camel(name): _json_value(getattr(record, name)) for name in names}


# Field names are few and fixed: each is converted once per process, not on
# every response (4.8 % of the gateway's samples while creating payments).
_camel = functools.cache(to_camel)


def _json_value(value: Any) -> Any:
    return timestamp(value) if isinstance(value, datetime) else value


def payment_resource(payment: PaymentRecord) -> dict[str, Any]:
    return {
        "paymentId": payment.id,
        **camel_fields(
            payment, "order_id", "amount", "currency", "status", "capture_method", "description",
            "metadata", "authorized_amount", "captured_amount", "refunded_amount",
        ),
        "pendingRefundAmount": payment.refund_reserved_amount - payment.refunded_amount,
        **camel_fields(
            payment, "pending_action", "requires_reconciliation", "reconciliation_reason",
            "psp", "psp_reference", "return_url",
        ),
        "nextAction": next_action(payment),
        **camel_fields(payment, "failure_code", "failure_message", "created_at", "updated_at"),
    }  # fmt: skip


def next_action(payment: PaymentRecord) -> dict[str, Any] | None:
    """What the customer must do before the PSP decides, while REQUIRES_ACTION:
    authenticate on the PSP's page (`url`; None where the PSP's own script
    shows it, as Stripe.js does without a return URL), until `expiresAt`."""
    if payment.status != PaymentStatus.REQUIRES_ACTION or payment.action_expires_at is None:
        return None
    return {
        "type": "redirect",
        "url": payment.next_action_url,
        "expiresAt": timestamp(payment.action_expires_at),
    }


def event_envelope(
    event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """What the event stream and merchant webhooks carry for one event."""
    return {"id": event_id, "type": event_type, "createdAt": timestamp(created_at), "data": data}


def timeline_event_resource(event: TimelineEvent) -> dict[str, Any]:
    return {
        "eventId": event.id,
        **camel_fields(event, "type", "from_status", "to_status", "source", "detail", "created_at"),
    }


def refund_resource(refund: RefundRecord) -> dict[str, Any]:
    return {
        "refundId": refund.id,
        **camel_fields(
            refund, "payment_id", "amount", "currency", "status", "reason", "psp_reference",
            "failure_code", "failure_message", "created_at", "updated_at",
        ),
    }  # fmt: skip
