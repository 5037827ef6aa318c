"""Capture, cancel and refunds over the API: what is allowed when, and what
racing requests get. The worker is replaced by a recorder here; the states it
would reach are set directly."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.gateway import Gateway

pytestmark = pytest.mark.anyio


async def a_payment(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, status: str, amount: int = 1000
) -> str:
    payment = (
        await gateway.create_payment(merchant.api_key, amount=amount, captureMethod="manual")
    ).json()
    captured = amount if status in ("CAPTURED",) else 0
    authorized = amount if status in ("AUTHORIZED", "CAPTURED") else 0
    db.execute(
        "UPDATE payments SET status = %s, authorized_amount = %s, captured_amount = %s,"
        " psp_reference = 'psp_test' WHERE id = %s",
        (status, authorized, captured, payment["paymentId"]),
    )
    return str(payment["paymentId"])


async def post(
    gateway: Gateway, merchant: Merchant, path: str, body: dict | None = None, key: str | None = "k"
):  # type: ignore[no-untyped-def]
    headers = gateway.headers(merchant.api_key, key)
    if body is None:
        return await gateway.client.post(path, headers=headers)
    return await gateway.client.post(path, json=body, headers=headers)


async def test_an_authorized_payment_is_captured_in_part_and_answers_202(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "AUTHORIZED")
    response = await post(gateway, merchant, f"/payments/{payment_id}/capture", {"amount": 600})
    assert response.status_code == 202
    assert (
        response.json()["status"] == "AUTHORIZED" and response.json()["pendingAction"] == "capture"
    )
    operation = db.execute(
        "SELECT id, kind, amount FROM payment_operations"
        " WHERE payment_id = %s AND kind = 'capture'",
        (payment_id,),
    ).fetchone()
    assert operation is not None and operation[1:] == ("capture", 600)
    assert gateway.work.nudged[-1] == operation[0]
    replay = await post(gateway, merchant, f"/payments/{payment_id}/capture", {"amount": 600})
    assert replay.headers["idempotent-replayed"] == "true"


async def test_a_capture_with_no_body_captures_everything(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "AUTHORIZED")
    assert (await post(gateway, merchant, f"/payments/{payment_id}/capture")).status_code == 202
    amount = db.execute(
        "SELECT amount FROM payment_operations WHERE payment_id = %s AND kind = 'capture'",
        (payment_id,),
    ).fetchone()
    assert amount == (1000,)


@pytest.mark.parametrize("status", ["PENDING", "CAPTURED", "FAILED", "CANCELED"])
async def test_capture_and_cancel_outside_authorized_are_409_invalid_state(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, status: str
) -> None:
    payment_id = await a_payment(gateway, merchant, db, status)
    capture = await post(gateway, merchant, f"/payments/{payment_id}/capture", {}, key="c")
    cancel = await post(gateway, merchant, f"/payments/{payment_id}/cancel", {}, key="x")
    for response in (capture, cancel):
        assert (response.status_code, response.json()["code"]) == (409, "invalid_state")


async def test_a_capture_beyond_the_authorization_is_422_and_a_second_capture_409(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "AUTHORIZED")
    too_much = await post(
        gateway, merchant, f"/payments/{payment_id}/capture", {"amount": 1001}, key="a"
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, "amount_exceeds_available")
    await post(gateway, merchant, f"/payments/{payment_id}/capture", {}, key="b")
    again = await post(gateway, merchant, f"/payments/{payment_id}/capture", {}, key="c")
    cancel = await post(gateway, merchant, f"/payments/{payment_id}/cancel", key=None)
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")
    assert (cancel.status_code, cancel.json()["code"]) == (409, "invalid_state")


async def test_capture_requires_an_idempotency_key_and_cancel_does_not(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "AUTHORIZED")
    capture = await post(gateway, merchant, f"/payments/{payment_id}/capture", {}, key=None)
    assert (capture.status_code, capture.json()["code"]) == (400, "idempotency_key_missing")
    first = await post(gateway, merchant, f"/payments/{payment_id}/cancel", key=None)
    second = await post(gateway, merchant, f"/payments/{payment_id}/cancel", key=None)
    assert first.status_code == second.status_code == 202
    assert second.json()["pendingAction"] == "cancel"
    voids = db.execute(
        "SELECT count(*) FROM payment_operations WHERE payment_id = %s AND kind = 'void'",
        (payment_id,),
    ).fetchone()
    assert voids == (1,)


async def test_a_refund_is_created_pending_and_listed(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "CAPTURED")
    created = await post(
        gateway,
        merchant,
        f"/payments/{payment_id}/refunds",
        {"amount": 250, "reason": "requested_by_customer"},
    )
    assert created.status_code == 201
    refund = created.json()
    assert (refund["status"], refund["amount"], refund["paymentId"]) == ("PENDING", 250, payment_id)
    headers = gateway.headers(merchant.api_key)
    listed = (await gateway.client.get(f"/payments/{payment_id}/refunds", headers=headers)).json()
    read = (await gateway.client.get(f"/refunds/{refund['refundId']}", headers=headers)).json()
    assert listed["data"] == [refund] and read == refund
    payment = (await gateway.client.get(f"/payments/{payment_id}", headers=headers)).json()
    assert payment["pendingRefundAmount"] == 250 and payment["refundedAmount"] == 0


async def test_refunds_beyond_the_capture_are_422_and_an_uncaptured_payment_409(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    captured = await a_payment(gateway, merchant, db, "CAPTURED")
    authorized = await a_payment(gateway, merchant, db, "AUTHORIZED")
    await post(gateway, merchant, f"/payments/{captured}/refunds", {"amount": 800}, key="r1")
    over = await post(gateway, merchant, f"/payments/{captured}/refunds", {"amount": 201}, key="r2")
    rest = await post(gateway, merchant, f"/payments/{captured}/refunds", {}, key="r3")
    nothing_left = await post(gateway, merchant, f"/payments/{captured}/refunds", {}, key="r4")
    early = await post(gateway, merchant, f"/payments/{authorized}/refunds", {}, key="r5")
    assert (over.status_code, over.json()["code"]) == (422, "amount_exceeds_available")
    assert rest.status_code == 201 and rest.json()["amount"] == 200
    assert (nothing_left.status_code, nothing_left.json()["code"]) == (
        422,
        "amount_exceeds_available",
    )
    assert (early.status_code, early.json()["code"]) == (409, "invalid_state")


async def test_two_refunds_racing_for_the_same_money_one_wins_one_is_refused(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "CAPTURED")
    first, second = await asyncio.gather(
        post(gateway, merchant, f"/payments/{payment_id}/refunds", {"amount": 700}, key="race-1"),
        post(gateway, merchant, f"/payments/{payment_id}/refunds", {"amount": 700}, key="race-2"),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 422]
    loser = first if first.status_code == 422 else second
    assert loser.json()["code"] == "amount_exceeds_available"
    reserved = db.execute(
        "SELECT refund_reserved_amount FROM payments WHERE id = %s", (payment_id,)
    )
    assert reserved.fetchone() == (700,)


async def test_the_database_itself_refuses_reservations_beyond_the_capture(
    merchant: Merchant, db: psycopg.Connection, gateway: Gateway
) -> None:
    payment_id = await a_payment(gateway, merchant, db, "CAPTURED")
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("UPDATE payments SET refund_reserved_amount = 1001 WHERE id = %s", (payment_id,))


async def test_another_merchants_payment_cannot_be_captured_canceled_or_refunded(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, database_url: str
) -> None:
    authorized = await a_payment(gateway, merchant, db, "AUTHORIZED")
    captured = await a_payment(gateway, merchant, db, "CAPTURED")
    refund = (await post(gateway, merchant, f"/payments/{captured}/refunds", {"amount": 1})).json()
    intruder = new_merchant(database_url)
    answers = [
        await post(gateway, intruder, f"/payments/{authorized}/capture", {}),
        await post(gateway, intruder, f"/payments/{authorized}/cancel", {}),
        await post(gateway, intruder, f"/payments/{captured}/refunds", {}),
        await gateway.client.get(
            f"/payments/{captured}/refunds", headers=gateway.headers(intruder.api_key)
        ),
        await gateway.client.get(
            f"/refunds/{refund['refundId']}", headers=gateway.headers(intruder.api_key)
        ),
    ]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 5
