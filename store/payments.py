"""Payments: written new, with their first event and their authorization in
one statement, and read. What moves them is `store.payment_changes`.

A read either takes the merchant whose payment it must be (the API: another
merchant's payment is None, exactly as a missing one) or says it is
unscoped (the actors, which act on ids read from Postgres, never on a
merchant's word)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NamedTuple

from payments.events import EventType
from payments.ids import ID_CLOCK_MARGIN
from payments.ids import id_at
from payments.operations import OperationKind
from payments.records import PaymentRecord
from payments.records import TimelineEvent
from payments.status import EventSource
from store.operations import INSERT_OPERATION
from store.operations import operation_parameters
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import fetch_all
from store.statements import fetch_by_id
from store.statements import fetch_value
from store.statements import fetch_values
from store.statements import parameters
from store.statements import placeholders
from store.statements import store_function
from store.timeline import event_parameters
from store.timeline import event_rows
from store.timeline import timeline_event

_PAYMENT = columns(PaymentRecord)
_CREATE = f"""
WITH created AS (
    INSERT INTO payments ({_PAYMENT})
    VALUES ({placeholders(PaymentRecord)})
    ON CONFLICT (merchant_id, order_id) DO NOTHING
    RETURNING id
), {event_rows("FROM created")}, operation AS (
    {INSERT_OPERATION} FROM created
)
SELECT count(*) FROM created
"""


class Created(NamedTuple):
    operation_id: str  # its authorization, to nudge
    event: TimelineEvent


@store_function
def insert_payment(payment: PaymentRecord, api_key_id: str | None = None) -> Steps[Created | None]:
    """Write a new payment with its `payment.created` event (naming its PSP;
    audit and outbox rows too) and its pending authorization. None when the
    merchant already has a payment for this order id: then nothing is written."""
    event = timeline_event(
        payment,
        EventType.PAYMENT_CREATED,
        from_status=None,
        source=EventSource.API,
        detail={"psp": payment.psp},
    )
    authorization = operation_parameters(payment, OperationKind.AUTHORIZE, payment.amount)
    created = yield from fetch_value(
        _CREATE,
        {
            **parameters(payment),
            "api_key_id": api_key_id,
            **event_parameters(payment, event),
            **authorization,
        },
    )
    if created != 1:
        return None
    return Created(authorization["operation_id"], event)


@store_function
def find_payment_id_for_order(merchant_id: str, order_id: str) -> Steps[str | None]:
    payment_id = yield from fetch_value(
        "SELECT id FROM payments WHERE merchant_id = %s AND order_id = %s",
        (merchant_id, order_id),
    )
    return None if payment_id is None else str(payment_id)


@store_function
def get_payment(
    merchant_id: str, payment_id: str, *, for_update: bool = False
) -> Statement[PaymentRecord | None]:
    """A merchant's payment; another merchant's is None, exactly as a missing
    one. With for_update, locked until the transaction ends, so the API, the
    actors and the webhooks take turns on it."""
    return fetch_by_id(
        PaymentRecord, "payments", payment_id, merchant_id=merchant_id, for_update=for_update
    )


@store_function
def get_payment_unscoped(
    payment_id: str, *, for_update: bool = False
) -> Statement[PaymentRecord | None]:
    """Any merchant's payment, for the actors, which act on ids read from
    Postgres (never on a merchant's word). With for_update, as `get_payment`."""
    return fetch_by_id(PaymentRecord, "payments", payment_id, for_update=for_update)


@store_function
def list_payments(
    merchant_id: str,
    *,
    limit: int,
    order_id: str | None = None,
    status: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    starting_after: str | None = None,
) -> Statement[list[PaymentRecord]]:
    """A page of the merchant's payments, newest first, paged on the id.
    There is no index on the creation time, but ids are ULIDs: a time bound
    is also an id bound, which the (merchant_id, id) index serves; the
    created_at test stays, for precision."""
    clauses = ["merchant_id = %(merchant_id)s"]
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": limit}
    if order_id is not None:
        clauses.append("order_id = %(order_id)s")
        params["order_id"] = order_id
    if status is not None:
        clauses.append("status = %(status)s")
        params["status"] = status
    if created_from is not None:
        clauses += ["id >= %(id_from)s", "created_at >= %(created_from)s"]
        params["id_from"] = id_at("pay", created_from - ID_CLOCK_MARGIN)
        params["created_from"] = created_from
    if created_before is not None:
        clauses += ["id < %(id_before)s", "created_at < %(created_before)s"]
        params["id_before"] = id_at("pay", created_before + ID_CLOCK_MARGIN)
        params["created_before"] = created_before
    if starting_after is not None:
        clauses.append("id < %(starting_after)s")
        params["starting_after"] = starting_after
    return fetch_all(
        PaymentRecord,
        f"SELECT {_PAYMENT} FROM payments WHERE {' AND '.join(clauses)}"
        " ORDER BY id DESC LIMIT %(limit)s",
        params,
    )


@store_function
def claim_authentication_checks(*, idle: timedelta, limit: int) -> Statement[list[str]]:
    """Payments waiting for their customer to authenticate that are due for
    a question to their PSP: quiet for `idle` since they began waiting, or
    since the last check. Each is given its next check (every `idle`, and
    once at its expiry) in the same statement; several janitors skip each
    other's rows."""
    return fetch_values(
        """
        UPDATE payments SET action_check_at = CASE
            WHEN clock_timestamp() < action_expires_at
                THEN least(action_expires_at, clock_timestamp() + %(idle)s)
            ELSE clock_timestamp() + %(idle)s END
        WHERE id IN (
            SELECT id FROM payments
            WHERE status = 'REQUIRES_ACTION'
              AND coalesce(action_check_at, updated_at + %(idle)s) <= clock_timestamp()
            ORDER BY updated_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
        )
        RETURNING id
        """,
        {"idle": idle, "limit": limit},
    )


@dataclass(frozen=True, slots=True)
class Waiting:
    """A PSP's payments still waiting: PENDING (how many, and the age of the
    oldest in seconds), and flagged for reconciliation."""

    psp: str
    pending: int
    oldest_pending_seconds: float
    flagged: int


@store_function
def waiting_by_psp() -> Statement[list[Waiting]]:
    """For the metrics: one row per PSP that has a payment waiting (the
    partial indexes `payments_pending` and `payments_flagged` hold them)."""
    return fetch_all(
        Waiting,
        "SELECT psp, count(*) FILTER (WHERE status = 'PENDING')::int AS pending,"
        " coalesce(extract(epoch FROM now() - min(created_at) FILTER"
        " (WHERE status = 'PENDING')), 0)::float8 AS oldest_pending_seconds,"
        " count(*) FILTER (WHERE requires_reconciliation)::int AS flagged"
        " FROM payments WHERE status = 'PENDING' OR requires_reconciliation GROUP BY psp",
    )
