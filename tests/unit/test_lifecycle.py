"""The transition rules, as tables: every (state, fact) and what it does."""

from datetime import timedelta

import pytest

from payments.errors import AmountTooLarge
from payments.errors import InconsistentPspAnswer
from payments.errors import InvalidState
from payments.lifecycle import ActionRequired
from payments.lifecycle import Authorized
from payments.lifecycle import Captured
from payments.lifecycle import Declined
from payments.lifecycle import PaymentState
from payments.lifecycle import PspFact
from payments.lifecycle import Voided
from payments.lifecycle import apply_fact
from payments.lifecycle import capture_amount
from payments.lifecycle import check_cancelable
from payments.lifecycle import check_confirmable
from payments.lifecycle import refund_amount
from payments.lifecycle import refund_succeeded
from payments.status import ALLOWED_MOVES
from payments.status import CaptureMethod
from payments.status import PaymentStatus
from payments.status import can_move

S = PaymentStatus


def state(status: PaymentStatus, **amounts: int) -> PaymentState:
    return PaymentState(
        status=status, capture_method=CaptureMethod.AUTOMATIC, amount=1000, **amounts
    )


AUTHORIZED = Authorized("psp_1", 1000)
CAPTURED = Captured("psp_1", 1000, 1000)
DECLINED = Declined("card_declined", "declined")
VOIDED = Voided("psp_1")
ACTION = ActionRequired("psp_1", "https://psp.example/3ds/1", timedelta(minutes=15))

# (status before, fact, status after or None for "no change")
TABLE: list[tuple[PaymentStatus, PspFact, PaymentStatus | None]] = [
    (S.PENDING, AUTHORIZED, S.AUTHORIZED),
    (S.PENDING, CAPTURED, S.CAPTURED),
    (S.PENDING, DECLINED, S.FAILED),
    (S.PENDING, VOIDED, None),
    (S.PENDING, ACTION, S.REQUIRES_ACTION),
    (S.REQUIRES_ACTION, ACTION, None),
    (S.REQUIRES_ACTION, AUTHORIZED, S.AUTHORIZED),
    (S.REQUIRES_ACTION, CAPTURED, S.CAPTURED),
    (S.REQUIRES_ACTION, DECLINED, S.FAILED),
    # Cancelled at the PSP while it waited for the customer: authentication expired.
    (S.REQUIRES_ACTION, VOIDED, S.FAILED),
    (S.AUTHORIZED, ACTION, None),
    (S.CAPTURED, ACTION, None),
    (S.FAILED, ACTION, None),
    (S.CANCELED, ACTION, None),
    (S.AUTHORIZED, AUTHORIZED, None),
    (S.AUTHORIZED, CAPTURED, S.CAPTURED),
    (S.AUTHORIZED, DECLINED, None),
    (S.AUTHORIZED, VOIDED, S.CANCELED),
    (S.CAPTURED, AUTHORIZED, None),
    (S.CAPTURED, CAPTURED, None),
    (S.CAPTURED, DECLINED, None),
    (S.CAPTURED, VOIDED, None),
    (S.FAILED, AUTHORIZED, None),
    (S.FAILED, CAPTURED, None),
    (S.FAILED, DECLINED, None),
    (S.REFUNDED, CAPTURED, None),
    (S.REFUNDED, AUTHORIZED, None),
    (S.CANCELED, CAPTURED, None),
    (S.CANCELED, VOIDED, None),
]


@pytest.mark.parametrize(("before", "fact", "after"), TABLE)
def test_a_psp_fact_moves_a_payment_only_forward(
    before: PaymentStatus, fact: PspFact, after: PaymentStatus | None
) -> None:
    amounts = {"authorized_amount": 1000} if before is S.AUTHORIZED else {}
    change = apply_fact(state(before, **amounts), fact)
    if after is None:
        assert change is None
    else:
        assert change is not None and change.status is after
        assert can_move(before, after)


def test_no_status_can_move_back_to_pending_and_final_statuses_are_final() -> None:
    for status, targets in ALLOWED_MOVES.items():
        assert S.PENDING not in targets, status
    for final in (S.FAILED, S.REFUNDED, S.CANCELED):
        assert ALLOWED_MOVES[final] == frozenset()


def test_no_status_moves_back_to_requires_action_once_the_psp_has_decided() -> None:
    waits_from = {
        status for status, targets in ALLOWED_MOVES.items() if S.REQUIRES_ACTION in targets
    }
    assert waits_from == {S.PENDING}
    assert ALLOWED_MOVES[S.REQUIRES_ACTION] == {S.AUTHORIZED, S.CAPTURED, S.FAILED}


def test_a_customer_to_authenticate_records_the_page_and_how_long_to_wait() -> None:
    change = apply_fact(state(S.PENDING), ACTION)
    assert change is not None
    assert (change.status, change.event_type) == (S.REQUIRES_ACTION, "payment.requires_action")
    assert change.next_action_url == "https://psp.example/3ds/1"
    assert change.action_expires_in == timedelta(minutes=15)
    assert change.psp_reference == "psp_1"


def test_a_cancel_while_the_psp_waited_for_the_customer_fails_as_authentication_expired() -> None:
    change = apply_fact(state(S.REQUIRES_ACTION), VOIDED)
    assert change is not None
    assert (change.status, change.failure_code) == (S.FAILED, "authentication_expired")


def test_a_failed_authentication_fails_the_payment_with_the_psps_code() -> None:
    failed = Declined("authentication_failed", "The customer failed 3-D Secure authentication.")
    change = apply_fact(state(S.REQUIRES_ACTION), failed)
    assert change is not None
    assert (change.status, change.failure_code) == (S.FAILED, "authentication_failed")


@pytest.mark.parametrize("status", [s for s in S if s is not S.REQUIRES_ACTION])
def test_only_a_payment_waiting_for_its_customer_can_be_confirmed(status: PaymentStatus) -> None:
    check_confirmable(state(S.REQUIRES_ACTION))
    with pytest.raises(InvalidState, match="not waiting"):
        check_confirmable(state(status))


def test_a_decline_records_its_code_and_message() -> None:
    change = apply_fact(state(S.PENDING), Declined("insufficient_funds", "no money"))
    assert change is not None
    assert (change.failure_code, change.failure_message) == ("insufficient_funds", "no money")
    assert change.event_type == "payment.failed"


def test_a_capture_records_the_amounts_and_the_psp_reference() -> None:
    change = apply_fact(state(S.PENDING), Captured("psp_9", 1000, 600))
    assert change is not None
    assert (change.authorized_amount, change.captured_amount) == (1000, 600)
    assert change.psp_reference == "psp_9"


@pytest.mark.parametrize(
    "fact",
    [
        Captured("psp_1", 1000, 1001),
        Captured("psp_1", 2000, 1500),
        Captured("psp_1", 1000, 0),
        Authorized("psp_1", 1001),
        Authorized("psp_1", 0),
    ],
)
def test_an_impossible_psp_answer_is_refused_not_believed(fact: PspFact) -> None:
    with pytest.raises(InconsistentPspAnswer):
        apply_fact(state(S.PENDING), fact)


def test_capture_defaults_to_the_whole_authorization_and_allows_less() -> None:
    authorized = state(S.AUTHORIZED, authorized_amount=1000)
    assert capture_amount(authorized, None) == 1000
    assert capture_amount(authorized, 400) == 400
    with pytest.raises(AmountTooLarge):
        capture_amount(authorized, 1001)


@pytest.mark.parametrize(
    "status", [S.PENDING, S.REQUIRES_ACTION, S.CAPTURED, S.FAILED, S.CANCELED, S.REFUNDED]
)
def test_only_an_authorized_payment_can_be_captured_or_canceled(status: PaymentStatus) -> None:
    with pytest.raises(InvalidState):
        capture_amount(state(status), None)
    with pytest.raises(InvalidState):
        check_cancelable(state(status))


def test_refunds_never_exceed_what_was_captured_less_what_is_refunded_or_in_flight() -> None:
    captured = state(
        S.CAPTURED,
        authorized_amount=1000,
        captured_amount=800,
        refunded_amount=300,
        refund_reserved_amount=400,
    )
    assert refund_amount(captured, None) == 400
    assert refund_amount(captured, 400) == 400
    with pytest.raises(AmountTooLarge):
        refund_amount(captured, 401)
    with pytest.raises(InvalidState):
        refund_amount(state(S.AUTHORIZED, authorized_amount=1000), 100)
    with pytest.raises(AmountTooLarge):
        refund_amount(state(S.CAPTURED, captured_amount=800, refund_reserved_amount=800), None)


@pytest.mark.parametrize(
    ("refunded_before", "amount", "status", "event"),
    [
        (0, 300, S.CAPTURED, "payment.partially_refunded"),
        (500, 300, S.REFUNDED, "payment.refunded"),
        (0, 800, S.REFUNDED, "payment.refunded"),
    ],
)
def test_a_refund_makes_the_payment_refunded_once_the_refunds_add_up_to_the_capture(
    refunded_before: int, amount: int, status: PaymentStatus, event: str
) -> None:
    captured = state(
        S.CAPTURED,
        authorized_amount=1000,
        captured_amount=800,
        refunded_amount=refunded_before,
        refund_reserved_amount=800,
    )
    change = refund_succeeded(captured, amount)
    assert (change.status, change.event_type) == (status, event)
    assert change.refunded_amount == refunded_before + amount


def test_a_refund_beyond_the_capture_is_an_impossible_psp_answer() -> None:
    with pytest.raises(InconsistentPspAnswer):
        refund_succeeded(state(S.CAPTURED, captured_amount=800, refunded_amount=600), 300)


def test_a_second_capture_or_a_cancel_during_a_capture_is_refused() -> None:
    capturing = state(S.AUTHORIZED, authorized_amount=1000, pending_action="capture")
    with pytest.raises(InvalidState):
        capture_amount(capturing, None)
    with pytest.raises(InvalidState):
        check_cancelable(capturing)
