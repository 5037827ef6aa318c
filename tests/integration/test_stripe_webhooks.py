"""Stripe's webhooks: real ones, sent and signed by localstripe (about a
second after the change) to an endpoint of the test, verified with the SDK's
helper by the connector, and read as news of our payment."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import stripe

from payments.operations import OperationKind
from payments.operations import psp_key
from payments.webhooks import new_webhook_secret
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import VerifiedWebhook
from psp.protocol import WebhookRejected
from psp.stripe.connector import StripeConnector
from stack.localstripe import LocalStripe
from stack.ports import wait_until
from tests.support.localstripe import connector_for
from tests.support.localstripe import receiving_webhooks

Received = tuple[bytes, dict[str, str]]


@pytest.fixture
def secret() -> str:
    return new_webhook_secret()


@pytest.fixture
def inbox(localstripe: LocalStripe, secret: str) -> Iterator[list[Received]]:
    """What localstripe sends, signed with `secret`. (It sends every event to
    every endpoint it knows; this one replaces the last test's.)"""
    with receiving_webhooks() as (url, received):
        localstripe.register_webhook("tests", url, secret)
        yield received


@pytest.fixture
def connector(localstripe: LocalStripe) -> Iterator[Callable[..., StripeConnector]]:
    """Connectors to localstripe with the webhook secrets a test gives."""
    made: list[StripeConnector] = []

    def make(**secrets_: object) -> StripeConnector:
        made.append(connector_for(localstripe.url, **secrets_))
        return made[-1]

    yield make
    for each in made:
        each.close()


def pay(connector: Callable[..., StripeConnector], token: str = "pm_card_visa") -> str:
    """A payment captured at once (or declined); our id."""
    payment_id = f"pay_{secrets.token_hex(8)}"
    connector().authorize(
        AuthorizeRequest(payment_id, 1000, "EUR", token, capture=True),
        idempotency_key=psp_key(OperationKind.AUTHORIZE, payment_id),
    )
    return payment_id


def webhook_about(inbox: list[Received], payment_id: str) -> Received:
    def found() -> Received | None:
        for body, headers in list(inbox):
            intent = json.loads(body)["data"]["object"]
            if (intent.get("metadata") or {}).get("paystream_payment_id") == payment_id:
                return body, headers
        return None

    return wait_until(found, timeout=10, what=f"localstripe's webhook about {payment_id}")


def test_a_real_webhook_verifies_and_reads_as_the_payment_captured(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    payment_id = pay(connector)
    body, headers = webhook_about(inbox, payment_id)
    receiver = connector(webhook_secret=secret)

    verified = receiver.verify_webhook(body, headers)
    event = receiver.parse_webhook(verified.payload)

    assert verified.event_id.startswith("evt_")
    assert verified.event_type == "payment_intent.succeeded"
    assert isinstance(event, PspPayment)
    assert (event.reference, event.status) == (
        payment_id,
        PspPaymentStatus.CAPTURED,
    )
    assert event.captured_amount == 1000


def test_a_declined_payments_webhook_reads_as_declined_with_its_code(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    payment_id = pay(connector, token="pm_card_chargeCustomerFail")
    body, headers = webhook_about(inbox, payment_id)
    receiver = connector(webhook_secret=secret)

    verified = receiver.verify_webhook(body, headers)
    event = receiver.parse_webhook(verified.payload)

    assert verified.event_type == "payment_intent.payment_failed"
    assert isinstance(event, PspPayment)
    assert event.status is PspPaymentStatus.DECLINED
    assert event.decline_code == "card_declined"


def test_a_forged_webhook_is_rejected(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    body, headers = webhook_about(inbox, pay(connector))
    receiver = connector(webhook_secret=secret)
    forged = body.replace(b'"amount": 1000', b'"amount": 1')
    assert forged != body

    with pytest.raises(WebhookRejected):
        receiver.verify_webhook(forged, headers)
    with pytest.raises(WebhookRejected):
        connector(webhook_secret=new_webhook_secret()).verify_webhook(body, headers)
    with pytest.raises(WebhookRejected):
        receiver.verify_webhook(body, {})


def test_a_stale_webhook_is_rejected_and_one_within_five_minutes_is_not(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    body, _ = webhook_about(inbox, pay(connector))
    receiver = connector(webhook_secret=secret)

    def signed(seconds_ago: int) -> dict[str, str]:
        # The same body signed as Stripe signs, by the SDK's own helper, earlier.
        at = int(time.time()) - seconds_ago
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, at)
        return {"Stripe-Signature": header}

    assert isinstance(receiver.verify_webhook(body, signed(200)), VerifiedWebhook)
    with pytest.raises(WebhookRejected):
        receiver.verify_webhook(body, signed(301))


def test_the_previous_secret_verifies_during_a_rotation_and_not_after(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    body, headers = webhook_about(inbox, pay(connector))
    rotated, later = new_webhook_secret(), datetime.now(UTC) + timedelta(hours=1)
    during = connector(webhook_secret=rotated, previous_webhook_secret=secret)
    until_later = connector(
        webhook_secret=rotated,
        previous_webhook_secret=secret,
        previous_webhook_secret_until=later,
    )
    after = connector(
        webhook_secret=rotated,
        previous_webhook_secret=secret,
        previous_webhook_secret_until=datetime.now(UTC) - timedelta(seconds=1),
    )

    assert during.verify_webhook(body, headers).event_type.startswith("payment_intent.")
    assert until_later.verify_webhook(body, headers).event_type.startswith("payment_intent.")
    with pytest.raises(WebhookRejected):
        after.verify_webhook(body, headers)
    with pytest.raises(WebhookRejected):
        connector(webhook_secret=rotated).verify_webhook(body, headers)


def test_events_not_about_our_payments_are_not_acted_on_and_malformed_ones_are_refused(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    body, _ = webhook_about(inbox, pay(connector))
    receiver = connector(webhook_secret=secret)
    event = json.loads(body)
    someone_elses = {**event, "data": {"object": {**event["data"]["object"], "metadata": {}}}}

    assert receiver.parse_webhook(someone_elses) is None
    assert receiver.parse_webhook({**event, "type": "balance.available"}) is None
    with pytest.raises(ValueError):
        receiver.parse_webhook({**event, "data": {}})
    with pytest.raises(ValueError):
        receiver.parse_webhook(
            {**event, "data": {"object": {"metadata": event["data"]["object"]["metadata"]}}}
        )


def test_an_answer_and_its_webhook_say_the_same(
    connector: Callable[..., StripeConnector], inbox: list[Received], secret: str
) -> None:
    payment_id = pay(connector)
    body, headers = webhook_about(inbox, payment_id)
    receiver = connector(webhook_secret=secret)
    event = receiver.parse_webhook(receiver.verify_webhook(body, headers).payload)
    asked = receiver.find_payment(payment_id)

    assert isinstance(event, PspPayment) and isinstance(asked, Answered)
    assert event == asked.value
