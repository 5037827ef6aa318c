"""PSP operations: one row per call paystream owes the PSP, with its key, its
attempts and the janitor's schedule for it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from payments.ids import new_id
from payments.operations import OperationKind
from payments.operations import OperationStatus
from payments.operations import psp_key
from payments.records import PaymentRecord
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_by_id
from store.statements import fetch_one
from store.statements import fetch_row
from store.statements import fetch_value
from store.statements import store_function


@dataclass(frozen=True, slots=True)
class OperationRow:
    id: str
    payment_id: str
    merchant_id: str
    kind: str
    refund_id: str | None
    amount: int
    psp_key: str
    status: str
    attempts: int
    outcome_unknown: bool
    last_error: str | None
    janitor_checks: int
    next_check_at: datetime | None
    flagged_at: datetime | None
    created_at: datetime
    updated_at: datetime


_OPERATION = columns(OperationRow)

# A new pending operation, selected from nothing or, in a statement that
# writes its payment too, from that statement's rows. Parameters:
# `operation_parameters`.
INSERT_OPERATION = (
    "INSERT INTO payment_operations (id, payment_id, merchant_id, kind, refund_id, amount,"
    " psp_key, status) SELECT %(operation_id)s, %(payment_id)s, %(merchant_id)s, %(kind)s,"
    " %(refund_id)s, %(operation_amount)s, %(psp_key)s, 'pending'"
)


def operation_parameters(
    payment: PaymentRecord, kind: OperationKind, amount: int, refund_id: str | None = None
) -> dict[str, Any]:
    return {
        "operation_id": new_id("op"),
        "payment_id": payment.id,
        "merchant_id": payment.merchant_id,
        "kind": kind,
        "refund_id": refund_id,
        "operation_amount": amount,
        "psp_key": psp_key(kind, refund_id or payment.id),
    }


@store_function
def insert_operation(
    payment: PaymentRecord, kind: OperationKind, amount: int, refund_id: str | None = None
) -> Steps[str]:
    """A pending operation on the payment (a refund's names its refund);
    returns its id."""
    params = operation_parameters(payment, kind, amount, refund_id)
    yield from execute(INSERT_OPERATION, params)
    return str(params["operation_id"])


def _select(where: str, *, limit: int | None = None) -> str:
    page = f" LIMIT {limit}" if limit is not None else ""
    return f"SELECT {_OPERATION} FROM payment_operations WHERE {where}{page}"


@store_function
def get_operation(operation_id: str, *, for_update: bool = False) -> Statement[OperationRow | None]:
    return fetch_by_id(OperationRow, "payment_operations", operation_id, for_update=for_update)


_OPERATION_WITH_PAYMENT = (
    f"SELECT {columns(OperationRow, 'o')}, {columns(PaymentRecord, 'p')}"
    " FROM payment_operations o JOIN payments p ON p.id = o.payment_id WHERE o.id = %s"
)
_OPERATION_FIELDS = [field.name for field in dataclasses.fields(OperationRow)]
_PAYMENT_FIELDS = [field.name for field in dataclasses.fields(PaymentRecord)]


@store_function
def get_operation_with_payment(
    operation_id: str,
) -> Steps[tuple[OperationRow, PaymentRecord] | None]:
    """An operation and its payment, read together (what a worker driving it
    needs first), or None if there is no such operation."""
    row = yield from fetch_row(_OPERATION_WITH_PAYMENT, (operation_id,))
    if row is None:
        return None
    split = len(_OPERATION_FIELDS)
    operation = OperationRow(**dict(zip(_OPERATION_FIELDS, row[:split], strict=True)))
    payment = PaymentRecord(**dict(zip(_PAYMENT_FIELDS, row[split:], strict=True)))
    return operation, payment


@store_function
def pending_operation(payment_id: str, kind: OperationKind) -> Statement[OperationRow | None]:
    return fetch_one(
        OperationRow,
        _select("payment_id = %s AND kind = %s AND status = 'pending'", limit=1),
        (payment_id, kind),
    )


@store_function
def pending_refund_operation(refund_id: str) -> Statement[OperationRow | None]:
    return fetch_one(
        OperationRow, _select("refund_id = %s AND status = 'pending'", limit=1), (refund_id,)
    )


@store_function
def record_attempt(operation_id: str) -> Steps[int]:
    """Count a try before it is made, committed, so that whoever looks next
    knows a call may have reached the PSP. Returns the tries made before."""
    before = yield from fetch_value(
        "UPDATE payment_operations SET attempts = attempts + 1, updated_at = now()"
        " WHERE id = %s RETURNING attempts - 1",
        (operation_id,),
    )
    return int(before or 0)


@store_function
def record_no_answer(operation_id: str, error: str, *, unknown: bool) -> Statement[int]:
    """A try ended without the PSP's word: unknown (it may have taken effect) or
    retryable (it surely did not)."""
    return execute(
        "UPDATE payment_operations SET outcome_unknown = outcome_unknown OR %s,"
        " last_error = %s, updated_at = now() WHERE id = %s",
        (unknown, error[:500], operation_id),
    )


@store_function
def finish_operation(
    operation_id: str, status: OperationStatus, error: str | None = None
) -> Steps[bool]:
    """Close a pending operation; False if someone closed it first."""
    closed = yield from execute(
        "UPDATE payment_operations SET status = %s, outcome_unknown = false,"
        " last_error = coalesce(%s, last_error), updated_at = now()"
        " WHERE id = %s AND status = 'pending'",
        (status, error, operation_id),
    )
    return closed == 1


# --- the janitor's view -------------------------------------------------------


@store_function
def claim_stalled_operations(*, idle: timedelta, limit: int) -> Statement[list[OperationRow]]:
    """Pending operations nobody touched for `idle` and due for a look, locked
    for this transaction; several janitors skip each other's rows."""
    return fetch_all(
        OperationRow,
        f"SELECT {_OPERATION} FROM payment_operations"
        " WHERE status = 'pending' AND flagged_at IS NULL AND updated_at <= now() - %s"
        " AND (next_check_at IS NULL OR next_check_at <= now())"
        " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (idle, limit),
    )


@store_function
def schedule_next_check(operation_id: str, delay: timedelta) -> Statement[int]:
    return execute(
        "UPDATE payment_operations SET janitor_checks = janitor_checks + 1,"
        " next_check_at = now() + %s WHERE id = %s",
        (delay, operation_id),
    )


@store_function
def flag_operation(operation_id: str, reason: str) -> Statement[int]:
    return execute(
        "UPDATE payment_operations SET flagged_at = now(), last_error = %s WHERE id = %s",
        (reason[:500], operation_id),
    )


@store_function
def unflag_operations(payment_id: str) -> Statement[int]:
    """The PSP's word came after all: the payment's operations are no longer flagged."""
    return execute(
        "UPDATE payment_operations SET flagged_at = NULL WHERE payment_id = %s", (payment_id,)
    )
