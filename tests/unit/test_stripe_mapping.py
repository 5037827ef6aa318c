"""The Stripe mapping is exhaustive: every PaymentIntent and refund status
Stripe documents, and every error class of its SDK, has its outcome; anything
else is UNKNOWN / Unknown. (The same outcomes driven through a real
localstripe and a fault-injecting proxy: tests/integration/test_stripe_faults.py.)"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefundStatus
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.stripe.mapping import INTENT_STATUSES
from psp.stripe.mapping import REFUND_STATUSES
from psp.stripe.mapping import call_outcome
from psp.stripe.mapping import payment_from_intent
from psp.stripe.mapping import payment_status
from psp.stripe.mapping import refund_status
from psp.stripe.settlement import settlement_line
from psp.stripe.webhooks import parse

ROOT = Path(__file__).resolve().parents[2]

INTENT_OUTCOMES = {
    ("requires_capture", False): PspPaymentStatus.AUTHORIZED,
    ("succeeded", False): PspPaymentStatus.CAPTURED,
    ("canceled", False): PspPaymentStatus.VOIDED,
    ("requires_payment_method", True): PspPaymentStatus.DECLINED,
    ("requires_payment_method", False): PspPaymentStatus.UNKNOWN,
    ("requires_action", False): PspPaymentStatus.REQUIRES_ACTION,
    ("processing", False): PspPaymentStatus.UNKNOWN,
    ("requires_confirmation", False): PspPaymentStatus.UNKNOWN,
}
REFUND_OUTCOMES = {
    "succeeded": PspRefundStatus.SUCCEEDED,
    "failed": PspRefundStatus.FAILED,
    "canceled": PspRefundStatus.FAILED,
    "pending": PspRefundStatus.UNKNOWN,
    "requires_action": PspRefundStatus.UNKNOWN,
}


def test_every_payment_intent_status_stripe_documents_has_an_outcome() -> None:
    assert {status for status, _ in INTENT_OUTCOMES} == INTENT_STATUSES
    assert set(REFUND_OUTCOMES) == REFUND_STATUSES


@pytest.mark.parametrize(("case", "expected"), INTENT_OUTCOMES.items())
def test_a_payment_intent_status_maps_to_ours(
    case: tuple[str, bool], expected: PspPaymentStatus
) -> None:
    status, attempted = case
    assert payment_status(status, attempted=attempted) is expected


@pytest.mark.parametrize(("status", "expected"), REFUND_OUTCOMES.items())
def test_a_refund_status_maps_to_ours(status: str, expected: PspRefundStatus) -> None:
    assert refund_status(status) is expected


@pytest.mark.parametrize("status", ["requires_reauthorization", "", None, 3, "SUCCEEDED"])
def test_a_status_stripe_does_not_document_is_unknown(status: object) -> None:
    assert payment_status(status, attempted=True) is PspPaymentStatus.UNKNOWN
    assert refund_status(status) is PspRefundStatus.UNKNOWN


def connection_error(cause: Exception) -> stripe.APIConnectionError:
    """What the SDK's httpx transport raises: the transport's exception as its cause."""
    try:
        raise stripe.APIConnectionError("Network error") from cause
    except stripe.APIConnectionError as error:
        return error


REQUEST = httpx.Request("POST", "https://api.stripe.com/v1/payment_intents")
ERROR_OUTCOMES: list[tuple[stripe.StripeError, type | None]] = [
    (stripe.CardError("declined", None, "card_declined", http_status=402), None),
    (stripe.InvalidRequestError("bad", "amount", "parameter_invalid", http_status=400), Rejected),
    (stripe.InvalidRequestError("gone", None, "resource_missing", http_status=404), Rejected),
    (stripe.IdempotencyError("other params", http_status=400), Rejected),
    (stripe.RateLimitError("slow down", http_status=429), Retryable),
    (stripe.APIError("oops", http_status=500), Retryable),
    (stripe.APIError("unavailable", http_status=503), Retryable),
    (stripe.APIError("key in use", http_status=409), Retryable),
    (stripe.AuthenticationError("bad key", http_status=401), Retryable),
    (stripe.PermissionError("not allowed", http_status=403), Retryable),
    (connection_error(httpx.ConnectError("refused", request=REQUEST)), Retryable),
    (connection_error(httpx.ConnectTimeout("slow", request=REQUEST)), Retryable),
    (connection_error(httpx.PoolTimeout("busy", request=REQUEST)), Retryable),
    (connection_error(httpx.ReadTimeout("late", request=REQUEST)), Unknown),
    (connection_error(httpx.RemoteProtocolError("dropped", request=REQUEST)), Unknown),
    (connection_error(httpx.WriteError("half sent", request=REQUEST)), Unknown),
    (stripe.APIError("Invalid response object from API", http_status=200), Unknown),
    (stripe.APIError("teapot", http_status=418), Unknown),
    (stripe.StripeError("something new"), Unknown),
    (stripe.TemporarySessionExpiredError("a v2 error"), Unknown),
]


@pytest.mark.parametrize(("error", "outcome"), ERROR_OUTCOMES, ids=lambda v: repr(v)[:40])
def test_every_error_class_has_its_outcome(error: stripe.StripeError, outcome: type | None) -> None:
    result = call_outcome(error)
    if outcome is None:  # a card error is an answer: the connector reads the decline
        assert result is None
    else:
        assert type(result) is outcome


def intent(**fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "amount": 1000,
        "currency": "eur",
        "metadata": {"paystream_payment_id": "pay_1"},
        **fields,
    }


def test_stripes_own_amounts_are_read_when_given() -> None:
    # Stripe's shape (localstripe's lacks these fields): partially captured.
    payment = payment_from_intent(
        intent(
            status="succeeded",
            amount_received=600,
            latest_charge={"amount": 1000, "amount_captured": 600, "amount_refunded": 100},
        )
    )
    assert (payment.authorized_amount, payment.captured_amount, payment.refunded_amount) == (
        1000,
        600,
        100,
    )


def test_a_decline_carries_the_issuers_decline_code_over_the_error_code() -> None:
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."}
    payment = payment_from_intent(
        intent(status="requires_payment_method", last_payment_error=error)
    )
    assert (payment.status, payment.decline_code, payment.decline_message) == (
        PspPaymentStatus.DECLINED,
        "insufficient_funds",
        "No.",
    )


def test_requires_action_names_the_redirect_page_when_stripe_gives_one() -> None:
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds"}}
    payment = payment_from_intent(intent(status="requires_action", next_action=action))
    assert payment.next_action_url == "https://hooks.stripe.com/3ds"


def test_stripes_requires_action_event_is_news_of_a_customer_to_authenticate() -> None:
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.stripe.com/3ds"}}
    event = parse(
        {
            "type": "payment_intent.requires_action",
            "data": {"object": intent(status="requires_action", next_action=action)},
        }
    )
    assert isinstance(event, PspPayment)
    assert event.status is PspPaymentStatus.REQUIRES_ACTION
    assert event.next_action_url == "https://hooks.stripe.com/3ds"


@pytest.mark.parametrize(
    "broken",
    [
        intent(status="succeeded", metadata={}),  # not ours
        intent(status="succeeded", amount="a lot"),
        intent(status="succeeded"),  # captured, but neither amount_received nor its charge
        {"status": "requires_capture"},
    ],
)
def test_an_intent_that_cannot_be_read_raises_rather_than_guesses(broken: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        payment_from_intent(broken)


class References:
    """Our ids as the report's lookups would find them (a dict, not Stripe)."""

    def payment(self, intent_id: str) -> str:
        return {"pi_1": "pay_1"}.get(intent_id, intent_id)

    def released_by_capture(self, refund: Any) -> bool:
        return False


def test_a_dispute_is_a_chargeback_line_and_a_payout_or_a_fee_is_no_line() -> None:
    # Stripe's documented shapes; localstripe has no disputes and no payout
    # balance transactions to drive this through.
    dispute = {
        "type": "adjustment",
        "reporting_category": "dispute",
        "amount": -1000,
        "fee": 1500,
        "net": -2500,
        "currency": "eur",
        "source": {"id": "du_1", "object": "dispute", "payment_intent": "pi_1"},
    }
    payout = {**dispute, "type": "payout", "reporting_category": "payout", "source": {"id": "po_1"}}
    fee = {**dispute, "type": "stripe_fee", "reporting_category": "fee", "source": {"id": "x"}}
    won = {**dispute, "reporting_category": "dispute_reversal", "amount": 1000}

    line = settlement_line(dispute, "2026-11-29", References())  # type: ignore[arg-type]

    assert line == {
        "batch": "2026-11-29",
        "date": "2026-11-29",
        "type": "chargeback",
        "psp_reference": "pi_1",
        "reference": "pay_1",
        "payment_reference": "pay_1",
        "gross": 1000,
        "fee": 1500,
        "net": -2500,
        "currency": "EUR",
    }
    for other in (payout, fee, won):
        assert settlement_line(other, "2026-11-29", References()) is None  # type: ignore[arg-type]


def test_no_module_of_paystream_imports_localstripe() -> None:
    # localstripe is GPL-3.0-or-later: paystream runs it, never imports it.
    packages = ("payments", "telemetry", "psp", "store", "gateway", "actors", "paystream", "stack")
    importing = []
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(name.split(".")[0] == "localstripe" for name in names):
                    importing.append(str(path.relative_to(ROOT)))
    assert importing == []
