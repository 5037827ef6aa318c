"""Payments in Postgres: a payment, its timeline and its outbox row move together."""

from datetime import UTC
from datetime import datetime
from typing import Any

import psycopg
import pytest

from payments.lifecycle import Captured
from payments.lifecycle import apply_fact
from payments.records import PaymentRecord
from payments.status import EventSource
from store.payment_changes import record_change
from store.payments import get_payment_unscoped
from store.payments import insert_payment
from tests.conftest import Merchant

pytestmark = pytest.mark.anyio


def a_payment(merchant: Merchant, order_id: str = "order-1") -> Any:
    now = datetime.now(UTC)
    return PaymentRecord(
        merchant_id=merchant.id,
        order_id=order_id,
        amount=1000,
        currency="EUR",
        capture_method="automatic",
        method_token="tok_visa",
        psp="simulator",
        description=None,
        metadata={},
        created_at=now,
        updated_at=now,
    )


def counts(db: psycopg.Connection, payment_id: str) -> tuple[int, int]:
    events = db.execute("SELECT count(*) FROM payment_events WHERE payment_id = %s", (payment_id,))
    outbox = db.execute(
        "SELECT count(*) FROM outbox WHERE payload->'data'->>'paymentId' = %s", (payment_id,)
    )
    return events.fetchone()[0], outbox.fetchone()[0]  # type: ignore[index]


async def test_a_new_payment_is_written_with_its_created_event_and_outbox_row(
    database_url: str, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment = a_payment(merchant)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert await insert_payment(conn, payment)
    assert counts(db, payment.id) == (1, 1)
    outbox = db.execute(
        "SELECT event_type, payload FROM outbox WHERE merchant_id = %s", (merchant.id,)
    )
    event_type, payload = outbox.fetchone()  # type: ignore[misc]
    assert event_type == "payment.created"
    assert payload["data"]["status"] == "PENDING" and payload["id"].startswith("evt_")


async def test_a_second_payment_for_the_same_order_writes_nothing(
    database_url: str, merchant: Merchant, db: psycopg.Connection
) -> None:
    first, second = a_payment(merchant), a_payment(merchant)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert await insert_payment(conn, first)
        assert not await insert_payment(conn, second)
    assert get_payment_unscoped(db, second.id) is None
    assert counts(db, second.id) == (0, 0)


async def test_a_change_rolled_back_leaves_no_event_and_no_outbox_row(
    database_url: str, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment = a_payment(merchant)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await insert_payment(conn, payment)
    with psycopg.connect(database_url) as conn:
        locked = get_payment_unscoped(conn, payment.id, for_update=True)
        assert locked is not None
        change = apply_fact(locked.state(), Captured("psp_1", 1000, 1000))
        assert change is not None
        record_change(conn, locked, change, source=EventSource.PSP)
        conn.rollback()
    assert counts(db, payment.id) == (1, 1)
    reloaded = get_payment_unscoped(db, payment.id)
    assert reloaded is not None and reloaded.status == "PENDING"


async def test_a_committed_change_writes_the_row_event_and_outbox_together(
    database_url: str, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment = a_payment(merchant)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await insert_payment(conn, payment)
    with psycopg.connect(database_url) as conn, conn.transaction():
        locked = get_payment_unscoped(conn, payment.id, for_update=True)
        assert locked is not None
        change = apply_fact(locked.state(), Captured("psp_1", 1000, 1000))
        assert change is not None
        updated, _ = record_change(conn, locked, change, source=EventSource.PSP)
    assert updated.status == "CAPTURED" and updated.captured_amount == 1000
    assert counts(db, payment.id) == (2, 2)


def test_the_database_refuses_amounts_that_cannot_be(
    db: psycopg.Connection, merchant: Merchant
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO payments (id, merchant_id, order_id, amount, currency, status,"
            " capture_method, method_token, psp, captured_amount, authorized_amount, created_at,"
            " updated_at) VALUES ('pay_x', %s, 'o', 100, 'EUR', 'CAPTURED', 'automatic', 't',"
            " 'simulator', 200, 200, now(), now())",
            (merchant.id,),
        )
