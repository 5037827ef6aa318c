"""PSP operations: one row per call paystream owes the PSP, with its key, its
attempts and the janitor's schedule for it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from payments.ids import new_id
from payments.operations import OperationKind, OperationStatus, psp_key
from store.rows import OPERATION_COLUMNS, OperationRow


class _Payment(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def merchant_id(self) -> str: ...


_INSERT = (
    "INSERT INTO payment_operations (id, payment_id, merchant_id, kind, refund_id, amount,"
    " psp_key, status) VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending')"
)


def _insert_params(
    payment: _Payment, kind: OperationKind, amount: int, refund_id: str | None
) -> tuple[Any, ...]:
    operation_id = new_id("op")
    key = psp_key(kind, refund_id or payment.id)
    return (operation_id, payment.id, payment.merchant_id, kind, refund_id, amount, key)


async def insert_operation_async(
    conn: AsyncConnection[Any],
    payment: _Payment,
    kind: OperationKind,
    amount: int,
    refund_id: str | None = None,
) -> str:
    params = _insert_params(payment, kind, amount, refund_id)
    await conn.execute(_INSERT, params)
    return str(params[0])


def insert_operation(
    conn: Connection[Any], payment: _Payment, kind: OperationKind, amount: int
) -> str:
    params = _insert_params(payment, kind, amount, None)
    conn.execute(_INSERT, params)
    return str(params[0])


def load_operation(
    conn: Connection[Any], operation_id: str, *, for_update: bool = False
) -> OperationRow | None:
    lock = " FOR UPDATE" if for_update else ""
    with conn.cursor(row_factory=class_row(OperationRow)) as cursor:
        cursor.execute(
            f"SELECT {OPERATION_COLUMNS} FROM payment_operations WHERE id = %s{lock}",
            (operation_id,),
        )
        return cursor.fetchone()


def pending_operations(conn: Connection[Any], payment_id: str) -> list[OperationRow]:
    with conn.cursor(row_factory=class_row(OperationRow)) as cursor:
        cursor.execute(
            f"SELECT {OPERATION_COLUMNS} FROM payment_operations"
            " WHERE payment_id = %s AND status = 'pending' ORDER BY created_at",
            (payment_id,),
        )
        return cursor.fetchall()


def pending_operation(
    conn: Connection[Any], payment_id: str, kind: OperationKind
) -> OperationRow | None:
    with conn.cursor(row_factory=class_row(OperationRow)) as cursor:
        cursor.execute(
            f"SELECT {OPERATION_COLUMNS} FROM payment_operations"
            " WHERE payment_id = %s AND kind = %s AND status = 'pending' LIMIT 1",
            (payment_id, kind),
        )
        return cursor.fetchone()


def pending_refund_operation(conn: Connection[Any], refund_id: str) -> OperationRow | None:
    with conn.cursor(row_factory=class_row(OperationRow)) as cursor:
        cursor.execute(
            f"SELECT {OPERATION_COLUMNS} FROM payment_operations"
            " WHERE refund_id = %s AND status = 'pending' LIMIT 1",
            (refund_id,),
        )
        return cursor.fetchone()


def record_attempt(conn: Connection[Any], operation_id: str) -> int:
    """Count a try before it is made, committed, so that whoever looks next
    knows a call may have reached the PSP. Returns the tries made before."""
    row = conn.execute(
        "UPDATE payment_operations SET attempts = attempts + 1, updated_at = now()"
        " WHERE id = %s RETURNING attempts - 1",
        (operation_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def record_no_answer(
    conn: Connection[Any], operation_id: str, error: str, *, unknown: bool
) -> None:
    """A try ended without the PSP's word: unknown (it may have taken effect) or
    retryable (it surely did not)."""
    conn.execute(
        "UPDATE payment_operations SET outcome_unknown = outcome_unknown OR %s,"
        " last_error = %s, updated_at = now() WHERE id = %s",
        (unknown, error[:500], operation_id),
    )


def finish_operation(
    conn: Connection[Any], operation_id: str, status: OperationStatus, error: str | None = None
) -> bool:
    """Close a pending operation; False if someone closed it first."""
    cursor = conn.execute(
        "UPDATE payment_operations SET status = %s, outcome_unknown = false,"
        " last_error = coalesce(%s, last_error), updated_at = now()"
        " WHERE id = %s AND status = 'pending'",
        (status, error, operation_id),
    )
    return cursor.rowcount == 1


# --- the janitor's view -------------------------------------------------------


def claim_stalled_operations(
    conn: Connection[Any], *, idle: timedelta, limit: int
) -> list[OperationRow]:
    """Pending operations nobody touched for `idle` and due for a look, locked
    for this transaction; several janitors skip each other's rows."""
    with conn.cursor(row_factory=class_row(OperationRow)) as cursor:
        cursor.execute(
            f"SELECT {OPERATION_COLUMNS} FROM payment_operations"
            " WHERE status = 'pending' AND flagged_at IS NULL AND updated_at <= now() - %s"
            " AND (next_check_at IS NULL OR next_check_at <= now())"
            " ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (idle, limit),
        )
        return cursor.fetchall()


def schedule_next_check(conn: Connection[Any], operation_id: str, delay: timedelta) -> None:
    conn.execute(
        "UPDATE payment_operations SET janitor_checks = janitor_checks + 1,"
        " next_check_at = now() + %s WHERE id = %s",
        (delay, operation_id),
    )


def flag_operation(conn: Connection[Any], operation_id: str, reason: str) -> None:
    conn.execute(
        "UPDATE payment_operations SET flagged_at = now(), last_error = %s WHERE id = %s",
        (reason[:500], operation_id),
    )
