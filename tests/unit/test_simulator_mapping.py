"""The simulator connector's one mapping of its words to ours: every status
its book writes maps to one of ours, and a status it does not have is
UNKNOWN, never a guess; its callbacks are read the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefund
from psp.protocol import PspRefundStatus
from psp.simulator.book import Book
from psp.simulator.mapping import SimulatorEvent
from psp.simulator.mapping import SimulatorPaymentStatus
from psp.simulator.mapping import SimulatorRefundStatus
from psp.simulator.mapping import event_from_json
from psp.simulator.mapping import payment_status
from psp.simulator.mapping import refund_status

CHARGE = {"id": "ch_1", "reference": "pay_1", "amount": 1000, "currency": "EUR"}
REFUND = {"id": "rf_1", "reference": "re_1", "paymentId": "ch_1", "amount": 500}


def everything_the_book_writes(book: Book) -> tuple[set[str], set[str]]:
    """The statuses of charges and refunds after every operation the simulator has:
    a sale, an authorization held, one voided, a decline, a customer asked
    to authenticate (3-D Secure) who has not answered yet, one who passed and
    one who failed; a refund that succeeds and one the issuer refuses."""
    charges = {
        name: book.authorize(
            reference=name, amount=1000, currency="EUR", token=token, capture=capture
        )
        for name, token, capture in (
            ("sale", "tok_visa", True),
            ("held", "tok_visa", False),
            ("voided", "tok_visa", False),
            ("declined", "tok_decline", True),
            ("refused", "tok_refund_fails", True),
            ("waiting", "tok_3ds_required", True),
            ("passed", "tok_3ds_required", True),
            ("failed", "tok_3ds_required", False),
        )
    }
    book.void(charges["voided"]["id"])
    book.complete_authentication(charges["passed"]["id"], passed=True)
    book.complete_authentication(charges["failed"]["id"], passed=False)
    refunds = [book.refund(charges[name]["id"], 100, f"re_{name}") for name in ("sale", "refused")]
    snapshot: dict[str, Any] = book.snapshot()
    return {c["status"] for c in snapshot["charges"]}, {r["status"] for r in refunds}


def test_every_status_the_simulators_book_writes_maps_and_an_unknown_one_is_unknown(
    tmp_path: Path,
) -> None:
    payments, refunds = everything_the_book_writes(Book(tmp_path / "book.sqlite3"))
    assert payments == {status.value for status in SimulatorPaymentStatus}
    assert refunds == {status.value for status in SimulatorRefundStatus}
    assert {payment_status(status) for status in payments} == {
        PspPaymentStatus.AUTHORIZED,
        PspPaymentStatus.CAPTURED,
        PspPaymentStatus.DECLINED,
        PspPaymentStatus.VOIDED,
        PspPaymentStatus.REQUIRES_ACTION,
    }
    assert {refund_status(status) for status in refunds} == {
        PspRefundStatus.SUCCEEDED,
        PspRefundStatus.FAILED,
    }
    for unknown in ("pending_3ds", "CAPTURED", "", None, 7):
        assert payment_status(unknown) is PspPaymentStatus.UNKNOWN
        assert refund_status(unknown) is PspRefundStatus.UNKNOWN


def test_a_charge_waiting_for_its_customer_names_the_challenge_page_and_the_return_url(
    tmp_path: Path,
) -> None:
    book = Book(tmp_path / "book.sqlite3")
    waiting = book.authorize(
        reference="pay_1",
        amount=1000,
        currency="EUR",
        token="tok_3ds_required",
        capture=False,
        challenge_base="http://127.0.0.1:8001/",
        return_url="https://shop.example/back",
    )
    passed = book.complete_authentication(waiting["id"], passed=True)

    assert waiting["nextActionUrl"] == f"http://127.0.0.1:8001/challenge/{waiting['id']}"
    assert waiting["returnUrl"] == "https://shop.example/back"
    assert (passed["status"], passed["authorizedAmount"], passed["nextActionUrl"]) == (
        "authorized",
        1000,
        None,
    )
    failed = book.authorize(
        reference="pay_2", amount=1000, currency="EUR", token="tok_3ds_required", capture=True
    )
    declined = book.complete_authentication(failed["id"], passed=False)
    assert (declined["status"], declined["declineCode"]) == ("declined", "authentication_failed")


@pytest.mark.parametrize("event", list(SimulatorEvent))
def test_every_callback_the_simulator_sends_is_read_as_its_object(event: SimulatorEvent) -> None:
    status = event.value.partition(".")[2]
    if event.value.startswith("payment."):
        parsed = event_from_json({"type": event.value, "data": {**CHARGE, "status": status}})
        assert isinstance(parsed, PspPayment)
        assert parsed.status is payment_status(status) is not PspPaymentStatus.UNKNOWN
    else:
        parsed = event_from_json({"type": event.value, "data": {**REFUND, "status": status}})
        assert isinstance(parsed, PspRefund)
        assert parsed.status is refund_status(status) is not PspRefundStatus.UNKNOWN


def test_a_callback_of_another_type_is_not_acted_on_and_a_malformed_one_is_refused() -> None:
    assert event_from_json({"type": "payment.created", "data": CHARGE}) is None
    with pytest.raises(ValueError, match="no data"):
        event_from_json({"type": "payment.captured"})
    with pytest.raises(ValueError, match="malformed"):
        event_from_json({"type": "payment.captured", "data": {"id": "ch_1"}})
