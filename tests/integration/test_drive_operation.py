"""drive_operation against real Postgres and the PSP simulator over real HTTP,
with the simulator's fault knobs turned. The simulator's book is the proof."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY

from actors.errors import TryAgain
from actors.operations import drive_operation
from payments.operations import OperationKind
from tests.conftest import Merchant
from tests.support.bank import Bank
from tests.support.payments import create_payment
from tests.support.payments import request


def drive(operation_id: str) -> None:
    drive_operation.fn(operation_id)


def drive_until_done(operation_id: str, tries: int = 5) -> None:
    for _ in range(tries):
        try:
            drive(operation_id)
            return
        except TryAgain:
            continue
    raise AssertionError(f"{operation_id} still not done after {tries} tries")


def test_an_automatic_payment_is_captured_with_one_charge(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    drive(authorize)
    assert bank.payment(payment_id)[:3] == ("CAPTURED", 1000, 1000)
    assert [e[0] for e in bank.timeline(payment_id)] == ["payment.created", "payment.captured"]
    assert bank.operation(authorize) == ("succeeded", 1, False)
    [charge] = bank.charges(payment_id)
    assert charge["status"] == "captured"


def test_a_closed_operation_is_left_alone(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    drive(authorize)
    drive(authorize)
    assert bank.operation(authorize)[1] == 1 and len(bank.charges(payment_id)) == 1


def test_a_decline_fails_the_payment_with_the_psps_code(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant, token="tok_insufficient_funds")
    drive(authorize)
    assert bank.payment(payment_id)[0] == "FAILED"
    code = bank.db.execute(
        "SELECT failure_code FROM payments WHERE id = %s", (payment_id,)
    ).fetchone()
    assert code == ("insufficient_funds",)
    assert bank.operation(authorize)[0] == "failed"


def test_a_manual_payment_is_authorized_then_partly_captured(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant, capture_method="manual")
    drive(authorize)
    assert bank.payment(payment_id)[:3] == ("AUTHORIZED", 1000, 0)
    capture = request(database_url, merchant, payment_id, OperationKind.CAPTURE, 600)
    assert bank.payment(payment_id)[5] == "capture"
    drive(capture)
    assert bank.payment(payment_id)[:3] == ("CAPTURED", 1000, 600)
    assert bank.payment(payment_id)[5] is None
    assert bank.charges(payment_id)[0]["capturedAmount"] == 600


def test_a_canceled_authorization_is_voided_at_the_psp(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant, capture_method="manual")
    drive(authorize)
    drive(request(database_url, merchant, payment_id, OperationKind.VOID))
    assert bank.payment(payment_id)[0] == "CANCELED"
    assert bank.charges(payment_id)[0]["status"] == "voided"


def test_a_capture_the_psp_refuses_leaves_the_payment_authorized_and_says_why(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant, capture_method="manual")
    drive(authorize)
    capture = request(database_url, merchant, payment_id, OperationKind.CAPTURE)
    bank.db.execute("UPDATE payment_operations SET amount = 5000 WHERE id = %s", (capture,))
    drive(capture)
    assert bank.payment(payment_id)[0] == "AUTHORIZED" and bank.payment(payment_id)[5] is None
    assert bank.timeline(payment_id)[-1][0] == "payment.capture_failed"
    assert bank.operation(capture)[0] == "failed"


def test_a_timeout_leaves_the_payment_pending_and_the_retry_asks_before_sending(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    bank.knobs(timeoutRate=1.0, hangMs=800)
    with pytest.raises(TryAgain):
        drive(authorize)
    assert bank.payment(payment_id)[0] == "PENDING"
    assert bank.operation(authorize) == ("pending", 1, True)
    time.sleep(0.5)  # the hung call ends at the PSP (until then its key is in flight there)
    assert bank.charges(payment_id) == []  # a timeout applies nothing
    bank.knobs(timeoutRate=0.0)
    drive(authorize)
    assert bank.payment(payment_id)[0] == "CAPTURED" and len(bank.charges(payment_id)) == 1


def test_a_lost_response_is_found_by_inquiry_and_never_charged_twice(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    bank.knobs(lostResponseRate=1.0)
    with pytest.raises(TryAgain):
        drive(authorize)
    assert bank.payment(payment_id)[0] == "PENDING"
    assert len(bank.charges(payment_id)) == 1  # booked, answer dropped
    drive(authorize)  # the inquiry needs no answer to a send
    assert bank.payment(payment_id)[0] == "CAPTURED" and len(bank.charges(payment_id)) == 1
    *_, (event, source, detail) = bank.timeline(payment_id)
    assert (event, source, detail["learnedBy"]) == ("payment.captured", "psp", "status_inquiry")


def test_a_server_error_is_retried_under_the_same_key(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    bank.knobs(errorRate=1.0)
    with pytest.raises(TryAgain):
        drive(authorize)
    assert bank.operation(authorize) == ("pending", 1, False)
    bank.knobs(errorRate=0.0)
    drive(authorize)
    assert bank.payment(payment_id)[0] == "CAPTURED" and len(bank.charges(payment_id)) == 1


def test_an_outage_opens_the_circuit_and_nothing_fails_until_the_psp_is_back(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    created = [create_payment(database_url, merchant) for _ in range(4)]
    openings = {"psp": "simulator"}
    opened_before = REGISTRY.get_sample_value("paystream_psp_circuit_openings_total", openings)
    bank.knobs(outages=[{"startsIn": 0, "lasts": 60}])
    for _, operation in created[:3]:
        with pytest.raises(TryAgain):
            drive(operation)
    opened = REGISTRY.get_sample_value("paystream_psp_circuit_openings_total", openings)
    assert (opened or 0) == (opened_before or 0) + 1
    attempts_before = bank.operation(created[3][1])[1]
    with pytest.raises(TryAgain, match="circuit open"):
        drive(created[3][1])
    assert bank.operation(created[3][1])[1] == attempts_before  # not even tried
    assert {bank.payment(p)[0] for p, _ in created} == {"PENDING"}
    bank.knobs(outages=[])
    time.sleep(2.1)  # the breaker's open window
    for _, operation in created:
        drive_until_done(operation)
    assert {bank.payment(p)[0] for p, _ in created} == {"CAPTURED"}
    assert all(len(bank.charges(p)) == 1 for p, _ in created)


def test_partial_then_full_refunds_make_the_payment_refunded(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    drive(authorize)
    drive(request(database_url, merchant, payment_id, OperationKind.REFUND, 300))
    assert bank.payment(payment_id)[0:4:3] == ("CAPTURED", 300)
    drive(request(database_url, merchant, payment_id, OperationKind.REFUND, 700))
    status, _, captured, refunded, reserved, *_ = bank.payment(payment_id)
    assert (status, captured, refunded, reserved) == ("REFUNDED", 1000, 1000, 1000)
    assert [e[0] for e in bank.timeline(payment_id)][-2:] == [
        "refund.succeeded",
        "payment.refunded",
    ]


def test_a_refund_the_issuer_refuses_fails_and_gives_its_amount_back(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant, token="tok_refund_fails")
    drive(authorize)
    drive(request(database_url, merchant, payment_id, OperationKind.REFUND, 400))
    status, _, _, refunded, reserved, *_ = bank.payment(payment_id)
    assert (status, refunded, reserved) == ("CAPTURED", 0, 0)
    refund = bank.db.execute(
        "SELECT status, failure_code FROM refunds WHERE payment_id = %s", (payment_id,)
    ).fetchone()
    assert refund == ("FAILED", "refund_declined")


def test_a_refund_whose_answer_was_lost_is_found_by_inquiry_and_booked_once(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    drive(authorize)
    refund_op = request(database_url, merchant, payment_id, OperationKind.REFUND, 1000)
    refund_id = bank.db.execute(
        "SELECT refund_id FROM payment_operations WHERE id = %s", (refund_op,)
    ).fetchone()[0]  # type: ignore[index]
    bank.knobs(lostResponseRate=1.0)
    with pytest.raises(TryAgain):
        drive(refund_op)
    bank.knobs(lostResponseRate=0.0)
    drive(refund_op)
    assert bank.payment(payment_id)[0] == "REFUNDED"
    assert len(bank.refunds(refund_id)) == 1


def test_two_workers_on_one_operation_book_one_charge_and_one_transition(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    bank.knobs(latencyMs=300)
    payment_id, authorize = create_payment(database_url, merchant)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            drive(authorize)
        except TryAgain as error:  # the loser may find the key in flight at the PSP
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        drive(authorize)
    assert len(bank.charges(payment_id)) == 1
    assert [e[0] for e in bank.timeline(payment_id)] == ["payment.created", "payment.captured"]
