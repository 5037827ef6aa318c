"""Unknown outcomes with Stripe: the connector talks to localstripe through a
fault-injecting proxy (stack/stripe_proxy.py) that hangs past the read
timeout, drops the connection after the request took effect, or answers 500
or 429 itself.

localstripe ignores `Idempotency-Key` (Stripe keeps the first answer for a
key and replays it); the proxy keeps Stripe's rule, so a retry with the same
key here behaves as it would at Stripe. The first test shows why that is
needed: without it, localstripe charges twice."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from payments.operations import OperationKind
from payments.operations import psp_key
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import NotFound
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefundStatus
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.stripe.connector import StripeConnector
from stack.localstripe import LocalStripe
from stack.ports import free_port
from stack.stripe_proxy import Fault
from stack.stripe_proxy import StripeProxy
from stack.stripe_proxy_server import serving_proxy
from tests.support.localstripe import READ_TIMEOUT
from tests.support.localstripe import connector_for
from tests.support.localstripe import stripe_sdk


@pytest.fixture
def proxy(localstripe: LocalStripe) -> Iterator[tuple[StripeProxy, StripeConnector]]:
    with serving_proxy(localstripe.url, hang_seconds=READ_TIMEOUT + 1) as (proxy, url):
        connector = connector_for(url)
        yield proxy, connector
        connector.close()


def new_payment_id() -> str:
    return f"pay_{secrets.token_hex(8)}"


def request(payment_id: str, *, capture: bool = True, amount: int = 1000) -> AuthorizeRequest:
    return AuthorizeRequest(payment_id, amount, "EUR", "pm_card_visa", capture=capture)


def authorize_key(payment_id: str) -> str:
    return psp_key(OperationKind.AUTHORIZE, payment_id)


def intents_at_localstripe(localstripe: LocalStripe, payment_id: str) -> list[str]:
    """Every PaymentIntent localstripe holds for our payment: how many charges."""
    with stripe_sdk(localstripe) as sdk:
        page = sdk.v1.payment_intents.list({"limit": 100})
        return [
            intent.id
            for intent in page.auto_paging_iter()
            if intent.metadata.to_dict().get("paystream_payment_id") == payment_id
        ]


def test_localstripe_alone_ignores_the_idempotency_key_and_charges_twice(
    localstripe: LocalStripe,
) -> None:
    # The departure the proxy makes up for; Stripe would answer the second
    # request with the first one's PaymentIntent.
    payment_id, direct = new_payment_id(), connector_for(localstripe.url)
    try:
        for _ in range(2):
            direct.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    finally:
        direct.close()

    assert len(intents_at_localstripe(localstripe, payment_id)) == 2


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.DROP])
def test_a_lost_answer_is_unknown_and_the_inquiry_by_our_reference_finds_the_charge(
    proxy: tuple[StripeProxy, StripeConnector], localstripe: LocalStripe, fault: Fault
) -> None:
    fakes, connector = proxy
    payment_id = new_payment_id()
    fakes.plan(fault)

    result = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    found = connector.find_payment(payment_id)  # no PaymentIntent id came back

    assert isinstance(result, Unknown)
    assert isinstance(found, Answered)
    assert found.value.status is PspPaymentStatus.CAPTURED
    assert [found.value.psp_reference] == intents_at_localstripe(localstripe, payment_id)


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.DROP])
def test_a_retry_with_the_same_key_after_a_lost_answer_charges_once(
    proxy: tuple[StripeProxy, StripeConnector], localstripe: LocalStripe, fault: Fault
) -> None:
    fakes, connector = proxy
    payment_id = new_payment_id()
    fakes.plan(fault)

    lost = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    retried = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))

    assert isinstance(lost, Unknown)
    assert isinstance(retried, Answered)
    assert fakes.replayed == 1
    assert [retried.value.psp_reference] == intents_at_localstripe(localstripe, payment_id)


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMITED])
def test_a_500_or_a_429_is_retryable_and_charged_nothing(
    proxy: tuple[StripeProxy, StripeConnector], localstripe: LocalStripe, fault: Fault
) -> None:
    fakes, connector = proxy
    payment_id = new_payment_id()
    fakes.plan(fault)

    result = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))

    assert isinstance(result, Retryable)
    assert fakes.forwarded == []
    assert intents_at_localstripe(localstripe, payment_id) == []
    assert isinstance(connector.find_payment(payment_id), NotFound)


def test_a_connection_refused_is_retryable(localstripe: LocalStripe) -> None:
    nowhere = connector_for(f"http://127.0.0.1:{free_port()}")
    try:
        payment_id = new_payment_id()
        result = nowhere.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    finally:
        nowhere.close()

    assert isinstance(result, Retryable)
    assert "ConnectError" in result.reason


def test_a_capture_whose_answer_was_lost_is_answered_by_its_retry_not_refused(
    proxy: tuple[StripeProxy, StripeConnector],
) -> None:
    fakes, connector = proxy
    payment_id = new_payment_id()
    authorized = connector.authorize(
        request(payment_id, capture=False), idempotency_key=authorize_key(payment_id)
    )
    assert isinstance(authorized, Answered)
    intent = authorized.value.psp_reference
    key = psp_key(OperationKind.CAPTURE, payment_id)
    fakes.plan(Fault.HANG)

    lost = connector.capture(intent, 700, idempotency_key=key)
    retried = connector.capture(intent, 700, idempotency_key=key)

    # Without the key's replay, a second capture of a captured intent is refused.
    assert isinstance(lost, Unknown)
    assert isinstance(retried, Answered)
    assert (retried.value.status, retried.value.captured_amount) == (PspPaymentStatus.CAPTURED, 700)


def test_a_refund_whose_answer_was_lost_is_found_by_our_reference_and_refunds_once(
    proxy: tuple[StripeProxy, StripeConnector], localstripe: LocalStripe
) -> None:
    fakes, connector = proxy
    payment_id, refund_id = new_payment_id(), f"ref_{secrets.token_hex(6)}"
    paid = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    assert isinstance(paid, Answered)
    key = psp_key(OperationKind.REFUND, refund_id)
    fakes.plan(Fault.DROP)

    lost = connector.refund(paid.value.psp_reference, 400, refund_id, idempotency_key=key)
    found = connector.find_refund(refund_id)
    retried = connector.refund(paid.value.psp_reference, 400, refund_id, idempotency_key=key)

    assert isinstance(lost, Unknown)
    assert isinstance(found, Answered) and isinstance(retried, Answered)
    assert found.value == retried.value
    assert found.value.status is PspRefundStatus.SUCCEEDED
    with stripe_sdk(localstripe) as sdk:
        refunds = sdk.v1.refunds.list({"payment_intent": paid.value.psp_reference})
    assert [r.id for r in refunds.data] == [found.value.psp_reference]


def test_the_same_key_with_other_parameters_is_rejected(
    proxy: tuple[StripeProxy, StripeConnector],
) -> None:
    _, connector = proxy
    payment_id = new_payment_id()
    connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))

    other = connector.authorize(
        request(payment_id, amount=2000), idempotency_key=authorize_key(payment_id)
    )

    assert isinstance(other, Rejected)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (Fault.SERVER_ERROR, Retryable),
        (Fault.RATE_LIMITED, Retryable),
        (Fault.HANG, Unknown),
        (Fault.DROP, Unknown),
    ],
)
def test_an_inquiry_that_gets_no_answer_says_so_and_decides_nothing(
    proxy: tuple[StripeProxy, StripeConnector], fault: Fault, outcome: type
) -> None:
    fakes, connector = proxy
    fakes.plan(fault)

    assert isinstance(connector.find_payment(new_payment_id(), "pi_whatever"), outcome)


def test_faults_drawn_at_the_rates_set_over_http_and_an_outage_reach_nothing(
    proxy: tuple[StripeProxy, StripeConnector], localstripe: LocalStripe
) -> None:
    fakes, connector = proxy
    url = connector.config.api_base
    every_one_fails = {"errorRate": 1.0, "seed": 3}
    httpx.patch(f"{url}/_proxy/faults", json=every_one_fails).raise_for_status()
    payment_id = new_payment_id()

    failed = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    httpx.patch(
        f"{url}/_proxy/faults", json={"errorRate": 0, "outages": [{"lasts": 30}]}
    ).raise_for_status()
    down = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    httpx.patch(f"{url}/_proxy/faults", json={"outages": []}).raise_for_status()
    paid = connector.authorize(request(payment_id), idempotency_key=authorize_key(payment_id))
    knobs = httpx.get(f"{url}/_proxy/faults").json()

    assert isinstance(failed, Retryable) and isinstance(down, Retryable)
    assert isinstance(paid, Answered)
    assert knobs["drawn"] == {"error": 1, "outage": 1, "normal": 1}
    assert fakes.forwarded == ["POST /v1/payment_intents"]
    assert len(intents_at_localstripe(localstripe, payment_id)) == 1
    assert httpx.get(f"{url}/_proxy/healthz").json() == {"upstream": "up"}


def test_an_inquiry_by_search_alone_finds_through_the_proxy_what_localstripe_cannot_search(
    localstripe: LocalStripe,
) -> None:
    # localstripe has no search (a departure); the proxy answers Stripe's
    # search from the metadata of the intents it passed on.
    payment_id = new_payment_id()
    with serving_proxy(localstripe.url, hang_seconds=READ_TIMEOUT + 1) as (fakes, url):
        searching = connector_for(url, inquiry_scan_limit=0)
        direct = connector_for(localstripe.url, inquiry_scan_limit=0)
        try:
            fakes.plan(Fault.DROP)
            lost = searching.authorize(
                request(payment_id), idempotency_key=authorize_key(payment_id)
            )
            found = searching.find_payment(payment_id)
            unsearchable = direct.find_payment(payment_id)
            nothing = searching.find_payment(new_payment_id())
        finally:
            searching.close()
            direct.close()

    assert isinstance(lost, Unknown)
    assert isinstance(found, Answered)
    assert (found.value.status, found.value.captured_amount) == (PspPaymentStatus.CAPTURED, 1000)
    assert [found.value.psp_reference] == intents_at_localstripe(localstripe, payment_id)
    assert isinstance(unsearchable, NotFound) and isinstance(nothing, NotFound)
    assert "GET /v1/payment_intents" not in fakes.forwarded
