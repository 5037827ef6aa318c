"""A payment's timeline. Every change to a payment is written with its
timeline event, its audit row and its outbox row in one statement, in the
caller's transaction, so the three can never disagree."""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

from psycopg.types.json import Jsonb

from payments.events import EventType
from payments.ids import new_id
from payments.records import PaymentRecord
from payments.records import TimelineEvent
from payments.resources import camel_fields
from payments.resources import event_envelope
from payments.resources import payment_resource
from payments.status import EventSource
from store.outbox import QUEUE_EVENT
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import execute
from store.statements import fetch_all
from store.statements import store_function


class Changed(NamedTuple):
    """A payment as a change left it, and the timeline event that says so."""

    payment: PaymentRecord
    event: TimelineEvent


def event_rows(rows_from: str = "") -> str:
    """The timeline event, audit row and outbox row of one change, as parts
    of a WITH clause, selected from `rows_from` (`FROM created`: written only
    if the change was) or from nothing. Parameters: `event_parameters`."""
    return f"""
timeline AS (
    INSERT INTO payment_events (id, payment_id, merchant_id, type, from_status, to_status,
                                source, detail, created_at)
    SELECT %(event_id)s, %(payment_id)s, %(merchant_id)s, %(type)s, %(from_status)s,
           %(to_status)s, %(source)s, %(detail)s, %(event_at)s {rows_from}
), audited AS (
    INSERT INTO audit_log (merchant_id, action, object_type, object_id, before, after)
    SELECT %(merchant_id)s, %(type)s, 'payment', %(payment_id)s, %(before)s, %(after)s
    {rows_from}
), queued AS (
    {QUEUE_EVENT} {rows_from}
)"""


_APPEND_EVENT = f"WITH {event_rows()} SELECT 1"
_EVENT = columns(TimelineEvent)


def timeline_event(
    payment: PaymentRecord,
    event_type: EventType,
    *,
    from_status: str | None,
    source: EventSource,
    detail: dict[str, Any] | None = None,
) -> TimelineEvent:
    """The event of the payment as it is now (written, its `updated_at` is the event's time)."""
    return TimelineEvent(
        id=new_id("evt"),
        payment_id=payment.id,
        type=event_type,
        from_status=from_status,
        to_status=payment.status,
        source=source,
        detail=detail or {},
        created_at=payment.updated_at,
    )


def event_parameters(payment: PaymentRecord, event: TimelineEvent) -> dict[str, Any]:
    """The parameters of `event_rows`: the event, what the outbox carries
    and what the audit log keeps (status and amounts; no status before a
    payment's first event)."""
    data = payment_resource(payment)
    if event.detail:
        data = {**data, "detail": event.detail}
    before = {"status": event.from_status} if event.from_status is not None else None
    after = {**_summary(payment), **({"detail": event.detail} if event.detail else {})}
    return {
        "event_id": event.id,
        "payment_id": payment.id,
        "merchant_id": payment.merchant_id,
        "type": event.type,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "source": event.source,
        "detail": Jsonb(event.detail),
        "event_at": event.created_at,
        "envelope": Jsonb(event_envelope(event.id, event.type, event.created_at, data)),
        "before": Jsonb(before) if before is not None else None,
        "after": Jsonb(after),
    }


def _summary(payment: PaymentRecord) -> dict[str, Any]:
    """What the audit log keeps of a payment's state: status and amounts."""
    return camel_fields(
        payment, "status", "amount", "currency", "authorized_amount", "captured_amount",
        "refunded_amount",
    )  # fmt: skip


@store_function
def append_event(
    payment: PaymentRecord,
    event_type: EventType,
    *,
    from_status: str | None,
    source: EventSource,
    detail: dict[str, Any] | None = None,
) -> Steps[TimelineEvent]:
    """Write one timeline event, its audit row and its outbox row for the
    payment as it is now; returns the event."""
    event = timeline_event(
        payment, event_type, from_status=from_status, source=source, detail=detail
    )
    yield from execute(_APPEND_EVENT, event_parameters(payment, event))
    return event


@store_function
def list_events(merchant_id: str, payment_id: str) -> Statement[list[TimelineEvent]]:
    """A merchant's payment's timeline, oldest first; another merchant's is empty."""
    return fetch_all(
        TimelineEvent,
        f"SELECT {_EVENT} FROM payment_events"
        " WHERE payment_id = %s AND merchant_id = %s ORDER BY created_at, id",
        (payment_id, merchant_id),
    )
