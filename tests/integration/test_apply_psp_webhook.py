"""apply_psp_webhook: callbacks move payments at most once, forward only,
whatever their order, duplication or timing against our own PSP calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import actors.outcomes
from actors.errors import TryAgain
from actors.operations import drive_operation
from actors.psp_webhooks import UNMATCHED_AFTER
from actors.psp_webhooks import apply_psp_webhook
from payments.operations import OperationKind
from tests.conftest import Merchant
from tests.support.bank import Bank
from tests.support.callbacks import store_callback
from tests.support.payments import create_payment
from tests.support.payments import request


def charge_json(bank: Bank, payment_id: str) -> dict[str, Any]:
    [charge] = bank.charges(payment_id)
    return charge


def race(*steps: Callable[[], object]) -> None:
    """Run the steps in threads released at the same instant."""
    start = threading.Barrier(len(steps))

    def run(step: Callable[[], object]) -> None:
        start.wait()
        step()

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def inbox_status(db: psycopg.Connection, inbox_id: str) -> str:
    return db.execute("SELECT status FROM webhook_inbox WHERE id = %s", (inbox_id,)).fetchone()[0]  # type: ignore[index]


def captured_with_its_answer_lost(
    bank: Bank, database_url: str, merchant: Merchant
) -> tuple[str, str, str]:
    """A payment the PSP captured but whose answer never came back (it stays
    PENDING), and the PSP's capture callback stored in the inbox: the
    payment's id, its authorize operation's and the callback's."""
    payment_id, authorize = create_payment(database_url, merchant)
    bank.knobs(lostResponseRate=1.0)
    with pytest.raises(TryAgain):
        drive_operation.fn(authorize)
    bank.knobs(lostResponseRate=0.0)
    inbox_id = store_callback(bank.db, "payment.captured", charge_json(bank, payment_id))
    return payment_id, authorize, inbox_id


def test_a_capture_callback_settles_a_pending_payment_and_its_operation(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize, inbox_id = captured_with_its_answer_lost(bank, database_url, merchant)
    apply_psp_webhook.fn(inbox_id)
    assert bank.payment(payment_id)[0] == "CAPTURED"
    assert bank.operation(authorize)[0] == "succeeded"
    assert bank.timeline(payment_id)[-1][:2] == ("payment.captured", "webhook")
    assert inbox_status(bank.db, inbox_id) == "applied"
    drive_operation.fn(authorize)  # our own retry finds the work done
    assert [e[0] for e in bank.timeline(payment_id)].count("payment.captured") == 1


def test_a_callback_whose_fact_fails_to_write_stays_pending_in_the_inbox_for_its_retry(
    bank: Bank, database_url: str, merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a payment whose answer was lost, and the PSP's capture callback in the inbox
    payment_id, _, inbox_id = captured_with_its_answer_lost(bank, database_url, merchant)

    def ledger_down(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("the ledger refused the entry")

    # When applying it fails inside its transaction
    monkeypatch.setattr(actors.outcomes, "post_entry", ledger_down)
    with pytest.raises(RuntimeError):
        apply_psp_webhook.fn(inbox_id)
    # Then neither the payment nor the callback moved: the callback is settled
    # with its fact, in one transaction, so the retry applies it
    assert bank.payment(payment_id)[0] == "PENDING"
    assert inbox_status(bank.db, inbox_id) == "pending"
    monkeypatch.undo()
    apply_psp_webhook.fn(inbox_id)
    assert bank.payment(payment_id)[0] == "CAPTURED"
    assert inbox_status(bank.db, inbox_id) == "applied"


def test_duplicated_and_reordered_callbacks_move_a_payment_once_and_never_back(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant, capture_method="manual")
    drive_operation.fn(authorize)
    authorized = charge_json(bank, payment_id)
    drive_operation.fn(request(database_url, merchant, payment_id, OperationKind.CAPTURE))
    captured = charge_json(bank, payment_id)
    callbacks = [
        ("payment.captured", captured),
        ("payment.captured", captured),
        ("payment.authorized", authorized),
        ("payment.authorized", authorized),
    ]
    for event_type, data in callbacks:
        apply_psp_webhook.fn(store_callback(bank.db, event_type, data))
    assert bank.payment(payment_id)[0] == "CAPTURED"
    moves = [e[0] for e in bank.timeline(payment_id)]
    assert moves.count("payment.captured") == 1 and moves.count("payment.authorized") == 1


def test_a_refund_callback_settles_the_refund(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, authorize = create_payment(database_url, merchant)
    drive_operation.fn(authorize)
    refund_op = request(database_url, merchant, payment_id, OperationKind.REFUND, 1000)
    refund_id = bank.db.execute(
        "SELECT refund_id FROM payment_operations WHERE id = %s", (refund_op,)
    ).fetchone()[0]  # type: ignore[index]
    bank.knobs(lostResponseRate=1.0)
    with pytest.raises(TryAgain):
        drive_operation.fn(refund_op)
    [refund] = bank.refunds(refund_id)
    apply_psp_webhook.fn(store_callback(bank.db, "refund.succeeded", refund))
    assert bank.payment(payment_id)[0] == "REFUNDED"
    assert bank.operation(refund_op)[0] == "succeeded"


def test_a_callback_for_a_reference_we_do_not_know_is_retried_then_set_aside(
    bank: Bank, database_url: str
) -> None:
    data = {
        "id": "psp_x",
        "reference": "pay_nobody_knows",
        "status": "captured",
        "amount": 1,
        "currency": "EUR",
        "authorizedAmount": 1,
        "capturedAmount": 1,
    }
    inbox_id = store_callback(bank.db, "payment.captured", data)
    for _ in range(UNMATCHED_AFTER - 1):
        with pytest.raises(TryAgain):
            apply_psp_webhook.fn(inbox_id)
        assert inbox_status(bank.db, inbox_id) == "pending"
    apply_psp_webhook.fn(inbox_id)
    assert inbox_status(bank.db, inbox_id) == "unmatched"


def test_a_callback_crossing_our_own_psp_call_makes_one_transition(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    for _ in range(5):
        payment_id, authorize, inbox_id = captured_with_its_answer_lost(
            bank, database_url, merchant
        )
        race(
            lambda op=authorize: drive_operation.fn(op), lambda i=inbox_id: apply_psp_webhook.fn(i)
        )
        moves = [e[0] for e in bank.timeline(payment_id)]
        assert moves == ["payment.created", "payment.captured"], moves
        assert len(bank.charges(payment_id)) == 1


def test_a_malformed_or_unknown_callback_is_kept_and_marked_ignored(bank: Bank) -> None:
    malformed = store_callback(bank.db, "payment.captured", {"reference": "pay_1"})
    unknown = store_callback(bank.db, "payment.disputed", {"reference": "pay_1"})
    apply_psp_webhook.fn(malformed)
    apply_psp_webhook.fn(unknown)
    assert inbox_status(bank.db, malformed) == inbox_status(bank.db, unknown) == "ignored"


def test_an_automatic_payment_the_psp_only_authorized_has_its_capture_asked_for_in_its_timeline(
    bank: Bank, database_url: str, merchant: Merchant
) -> None:
    payment_id, _ = create_payment(database_url, merchant)
    authorized = {
        "id": "psp_authorized_only",
        "reference": payment_id,
        "status": "authorized",
        "amount": 1000,
        "currency": "EUR",
        "authorizedAmount": 1000,
        "capturedAmount": 0,
    }
    apply_psp_webhook.fn(store_callback(bank.db, "payment.authorized", authorized))
    status, *_, pending_action, _ = bank.payment(payment_id)
    assert (status, pending_action) == ("AUTHORIZED", "capture")
    assert [(e[0], e[1]) for e in bank.timeline(payment_id)] == [
        ("payment.created", "api"),
        ("payment.authorized", "webhook"),
        ("payment.capture_requested", "webhook"),
    ]
    capture = bank.db.execute(
        "SELECT status, amount FROM payment_operations WHERE payment_id = %s AND kind = 'capture'",
        (payment_id,),
    ).fetchone()
    assert capture == ("pending", 1000)
