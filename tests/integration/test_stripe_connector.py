"""The Stripe connector against a real Stripe emulator: localstripe, a process
no one here wrote, started once for the session. Where localstripe departs
from Stripe's documented behaviour the test says which departure it works
around (psp/stripe/departures.py lists them all)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TypeVar

import pytest
import stripe
from prometheus_client import REGISTRY

from payments.operations import OperationKind
from payments.operations import psp_key
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import CallResult
from psp.protocol import InquiryResult
from psp.protocol import NotFound
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefundStatus
from psp.protocol import Unknown
from psp.stripe.connector import StripeConnector
from stack.localstripe import LocalStripe
from tests.support.localstripe import THREE_D_SECURE_CARDS
from tests.support.localstripe import authenticate
from tests.support.localstripe import connector_for
from tests.support.localstripe import stripe_sdk
from tests.support.localstripe import three_d_secure_method

# localstripe's test PaymentMethods. Stripe's own decline id is
# pm_card_chargeDeclined, which localstripe does not have (and its
# pm_card_visa_chargeDeclined does not decline); pm_card_chargeCustomerFail
# (4000000000000341) declines with card_declined at both.
VISA, DECLINED = "pm_card_visa", "pm_card_chargeCustomerFail"
T = TypeVar("T")


@pytest.fixture
def connector(localstripe: LocalStripe) -> Iterator[StripeConnector]:
    direct = connector_for(localstripe.url)
    yield direct
    direct.close()


def new_payment_id() -> str:
    return f"pay_{secrets.token_hex(8)}"


def authorize(
    connector: StripeConnector,
    *,
    capture: bool,
    token: str = VISA,
    amount: int = 1000,
    payment_id: str | None = None,
) -> PspPayment:
    payment_id = payment_id or new_payment_id()
    request = AuthorizeRequest(payment_id, amount, "EUR", token, capture=capture)
    result = connector.authorize(
        request, idempotency_key=psp_key(OperationKind.AUTHORIZE, payment_id)
    )
    assert isinstance(result, Answered), result
    return result.value


def answered(result: CallResult[T] | InquiryResult[T]) -> T:
    assert isinstance(result, Answered), result
    return result.value


def test_an_automatic_capture_is_captured_at_once_with_our_id_in_metadata(
    connector: StripeConnector,
) -> None:
    payment = authorize(connector, capture=True)

    assert payment.status is PspPaymentStatus.CAPTURED
    assert payment.psp_reference.startswith("pi_")
    assert (payment.amount, payment.authorized_amount, payment.captured_amount) == (
        1000,
        1000,
        1000,
    )
    assert payment.currency == "EUR"


def test_a_manual_capture_is_only_authorized(connector: StripeConnector) -> None:
    payment = authorize(connector, capture=False)

    assert payment.status is PspPaymentStatus.AUTHORIZED
    assert (payment.authorized_amount, payment.captured_amount) == (1000, 0)


def test_a_partial_capture_captures_what_was_asked_and_the_inquiry_agrees(
    connector: StripeConnector,
) -> None:
    authorized = authorize(connector, capture=False)

    captured = answered(
        connector.capture(
            authorized.psp_reference,
            600,
            idempotency_key=psp_key(OperationKind.CAPTURE, authorized.reference),
        )
    )
    asked = answered(connector.find_payment(authorized.reference, authorized.psp_reference))

    # localstripe books the release of the other 400 as a refund; the
    # connector reads it Stripe's way: 600 captured, nothing refunded.
    for payment in (captured, asked):
        assert payment.status is PspPaymentStatus.CAPTURED
        assert (payment.authorized_amount, payment.captured_amount) == (1000, 600)
        assert payment.refunded_amount == 0


def test_a_void_cancels_the_authorization_and_the_inquiry_agrees(
    connector: StripeConnector,
) -> None:
    authorized = authorize(connector, capture=False)

    voided = connector.void(
        authorized.psp_reference, idempotency_key=psp_key(OperationKind.VOID, authorized.reference)
    )
    asked = connector.find_payment(authorized.reference, authorized.psp_reference)

    assert answered(voided).status is PspPaymentStatus.VOIDED
    assert answered(asked).status is PspPaymentStatus.VOIDED
    # Stripe refuses to capture a canceled PaymentIntent; localstripe does
    # not (it books the charge), so that is not asked of it here.


def test_partial_refunds_add_up_and_each_is_found_by_our_reference(
    connector: StripeConnector,
) -> None:
    payment = authorize(connector, capture=True)
    refund_ids = [f"ref_{secrets.token_hex(6)}" for _ in range(2)]

    refunds = [
        answered(
            connector.refund(
                payment.psp_reference,
                amount,
                refund_id,
                idempotency_key=psp_key(OperationKind.REFUND, refund_id),
            )
        )
        for amount, refund_id in zip((300, 200), refund_ids, strict=True)
    ]

    assert [r.status for r in refunds] == [PspRefundStatus.SUCCEEDED] * 2
    assert [r.reference for r in refunds] == refund_ids
    assert {r.payment_psp_reference for r in refunds} == {payment.psp_reference}
    assert answered(connector.find_payment(payment.reference)).refunded_amount == 500
    for refund in refunds:
        assert answered(connector.find_refund(refund.reference)) == refund
        assert answered(connector.find_refund(refund.reference, refund.psp_reference)) == refund


def test_a_declined_card_is_an_answer_with_stripes_decline_code(
    connector: StripeConnector,
) -> None:
    payment_id = new_payment_id()

    declined = authorize(connector, capture=True, token=DECLINED, payment_id=payment_id)
    asked = answered(connector.find_payment(payment_id))

    assert declined.status is PspPaymentStatus.DECLINED
    assert declined.decline_code == "card_declined"
    assert declined.decline_message
    # Stripe names the PaymentIntent in a card error; localstripe does not,
    # so the inquiry is what finds it: declined, with the same code.
    assert asked.psp_reference.startswith("pi_")
    assert (asked.status, asked.decline_code) == (PspPaymentStatus.DECLINED, "card_declined")


@pytest.mark.parametrize("number", THREE_D_SECURE_CARDS)
@pytest.mark.parametrize(
    ("capture", "success", "then"),
    [
        (False, True, PspPaymentStatus.AUTHORIZED),
        (True, True, PspPaymentStatus.CAPTURED),
        (True, False, PspPaymentStatus.DECLINED),
    ],
)
def test_a_3d_secure_card_requires_the_customers_action_and_the_inquiry_tells_how_it_ended(
    connector: StripeConnector,
    localstripe: LocalStripe,
    number: str,
    capture: bool,
    success: bool,
    then: PspPaymentStatus,
) -> None:
    pending = authorize(
        connector, capture=capture, token=three_d_secure_method(localstripe, number)
    )

    assert pending.status is PspPaymentStatus.REQUIRES_ACTION
    # No page to redirect to: localstripe refuses a return_url, so the
    # connector sends none and the customer is left to Stripe.js
    # (next_action use_stripe_sdk). With Stripe and a return_url, this is
    # next_action.redirect_to_url.url.
    assert pending.next_action_url is None

    authenticate(localstripe, pending.psp_reference, success=success)
    ended = answered(connector.find_payment(pending.reference, pending.psp_reference))

    assert ended.status is then
    if then is PspPaymentStatus.DECLINED:
        assert ended.decline_code == "payment_intent_authentication_failure"


def test_localstripe_refuses_a_return_url_which_is_why_the_connector_leaves_it_out(
    localstripe: LocalStripe,
) -> None:
    with (
        stripe_sdk(localstripe) as sdk,
        pytest.raises(stripe.InvalidRequestError, match="return_url"),
    ):
        sdk.v1.payment_intents.create(
            {
                "amount": 1000,
                "currency": "eur",
                "payment_method": VISA,
                "confirm": True,
                "return_url": "https://shop.example/back",
            }
        )


def test_an_inquiry_by_another_payments_id_is_unknown_not_an_answer(
    connector: StripeConnector,
) -> None:
    payment = authorize(connector, capture=False)

    assert isinstance(connector.find_payment(new_payment_id(), payment.psp_reference), Unknown)


def test_an_inquiry_for_what_never_reached_stripe_finds_nothing(
    connector: StripeConnector,
) -> None:
    # By our reference: the recent intents are listed, then the search,
    # which localstripe does not have (404), says nothing either.
    assert isinstance(connector.find_payment(new_payment_id()), NotFound)
    assert isinstance(connector.find_payment(new_payment_id(), "pi_doesnotexist"), NotFound)
    assert isinstance(connector.find_refund(f"ref_{secrets.token_hex(6)}"), NotFound)


def test_every_stripe_call_is_timed_under_the_psp_operation_and_outcome(
    connector: StripeConnector,
) -> None:
    def count(operation: str, outcome: str) -> float:
        labels = {"psp": "stripe", "operation": operation, "outcome": outcome}
        value = REGISTRY.get_sample_value("paystream_psp_call_duration_seconds_count", labels)
        return value or 0.0

    before = (count("authorize", "answered"), count("find_payment", "not_found"))
    authorize(connector, capture=True)
    connector.find_payment(new_payment_id())

    assert (count("authorize", "answered"), count("find_payment", "not_found")) == (
        before[0] + 1,
        before[1] + 1,
    )
