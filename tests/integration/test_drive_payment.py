"""drive_payment against real Postgres and a scripted PSP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from actors.errors import TryAgain
from actors.payments import drive_payment
from actors.runtime import Runtime, install
from psp.protocol import AuthorizeRequest, Rejected, Retryable, Unknown
from store.payments import new_payment
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.fake_psp import FakePsp


@pytest.fixture
def psp(database_url: str) -> Iterator[FakePsp]:
    fake = FakePsp()
    pool = open_pool(database_url, max_size=4)
    install(lambda: Runtime(pool=pool, psp=fake))
    yield fake
    pool.close()


def create(
    db: psycopg.Connection,
    merchant: Merchant,
    capture_method: str = "automatic",
    token: str = "tok_visa",
) -> str:
    payment = new_payment(
        merchant_id=merchant.id,
        order_id=f"o-{datetime.now().timestamp()}",
        amount=1000,
        currency="EUR",
        capture_method=capture_method,
        method_token=token,
        description=None,
        metadata={},
        now=datetime.now(UTC),
    )
    db.execute(
        "INSERT INTO payments (id, merchant_id, order_id, amount, currency, status,"
        " capture_method, method_token, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, 'PENDING', %s, %s, now(), now())",
        (payment.id, merchant.id, payment.order_id, 1000, "EUR", capture_method, token),
    )
    return payment.id


def status_and_events(db: psycopg.Connection, payment_id: str) -> tuple[str, list[str]]:
    status = db.execute("SELECT status FROM payments WHERE id = %s", (payment_id,)).fetchone()
    events = db.execute(
        "SELECT type FROM payment_events WHERE payment_id = %s ORDER BY created_at", (payment_id,)
    ).fetchall()
    return status[0], [e[0] for e in events]  # type: ignore[index]


def test_an_automatic_payment_is_captured_in_one_psp_call(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant
) -> None:
    payment_id = create(db, merchant)
    drive_payment.fn(payment_id)
    assert status_and_events(db, payment_id) == ("CAPTURED", ["payment.captured"])
    assert psp.calls == [f"authorize {payment_id}:authorize"]
    outbox = db.execute(
        "SELECT payload FROM outbox WHERE event_type = 'payment.captured'"
        " AND payload->'data'->>'paymentId' = %s",
        (payment_id,),
    ).fetchone()
    assert outbox is not None and outbox[0]["data"]["capturedAmount"] == 1000


def test_a_manual_payment_stops_at_authorized(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant
) -> None:
    payment_id = create(db, merchant, capture_method="manual")
    drive_payment.fn(payment_id)
    assert status_and_events(db, payment_id) == ("AUTHORIZED", ["payment.authorized"])


def test_a_payment_that_moved_on_is_left_alone(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant
) -> None:
    payment_id = create(db, merchant)
    drive_payment.fn(payment_id)
    drive_payment.fn(payment_id)
    assert len(psp.calls) == 1
    assert status_and_events(db, payment_id) == ("CAPTURED", ["payment.captured"])


def test_a_rejection_is_the_psps_word_and_fails_the_payment(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant
) -> None:
    psp.script = lambda request: Rejected("insufficient_funds", "no money")
    payment_id = create(db, merchant)
    drive_payment.fn(payment_id)
    row = db.execute(
        "SELECT status, failure_code, failure_message FROM payments WHERE id = %s", (payment_id,)
    ).fetchone()
    assert row == ("FAILED", "insufficient_funds", "no money")


@pytest.mark.parametrize("answer", [Retryable("PSP answered 503"), Unknown("read timeout")])
def test_a_psp_that_cannot_answer_leaves_the_payment_pending_and_asks_for_a_retry(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant, answer: Retryable | Unknown
) -> None:
    psp.script = lambda request: answer
    payment_id = create(db, merchant)
    with pytest.raises(TryAgain):
        drive_payment.fn(payment_id)
    assert status_and_events(db, payment_id) == ("PENDING", [])


def test_two_workers_driving_one_payment_at_once_book_one_charge_and_one_transition(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant
) -> None:
    both_calling = threading.Barrier(2)
    psp.before_booking = lambda: both_calling.wait(timeout=5)
    payment_id = create(db, merchant)
    workers = [threading.Thread(target=drive_payment.fn, args=(payment_id,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(psp.calls) == 2 and len(psp.booked) == 1
    assert status_and_events(db, payment_id) == ("CAPTURED", ["payment.captured"])


def test_the_psp_is_told_to_capture_only_automatic_payments(
    psp: FakePsp, db: psycopg.Connection, merchant: Merchant
) -> None:
    seen: list[AuthorizeRequest] = []
    psp.script = lambda request: seen.append(request)  # type: ignore[func-returns-value]
    drive_payment.fn(create(db, merchant, capture_method="manual"))
    drive_payment.fn(create(db, merchant))
    assert [request.capture for request in seen] == [False, True]
