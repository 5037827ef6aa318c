"""3-D Secure on the Stripe path: a payment at the Stripe connector, against
localstripe, driven by the actors into REQUIRES_ACTION by a 3-D Secure test
card, then passed, failed or left to expire. localstripe shows no page to
redirect to (it refuses a return_url: psp/stripe/departures.py), so the
customer's answer is given with its own `_authenticate` endpoint, as
Stripe.js would."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import redis

from actors.authentication import check_authentication
from actors.card_testing import CardTestingCounter
from actors.operations import drive_operation
from actors.runtime import Runtime
from actors.runtime import install
from payments.card_testing import CardTestingPolicy
from psp.breaker import CircuitBreaker
from psp.protocol import Connectors
from psp.stripe.connector import StripeConnector
from stack.localstripe import LocalStripe
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.localstripe import THREE_D_SECURE_CARDS
from tests.support.localstripe import authenticate
from tests.support.localstripe import connector_for
from tests.support.localstripe import stripe_sdk
from tests.support.localstripe import three_d_secure_method
from tests.support.payments import create_payment


@pytest.fixture
def stripe_actors(
    localstripe: LocalStripe, database_url: str, redis_url: str, redis_client: redis.Redis
) -> Iterator[StripeConnector]:
    """The actors' runtime with the Stripe connector on localstripe."""
    connector = connector_for(localstripe.url)
    pool = open_pool(database_url, max_size=4)
    client = redis.Redis.from_url(redis_url)
    breaker = CircuitBreaker(client, "stripe", refresh_seconds=0)
    counter = CardTestingCounter(client, CardTestingPolicy())
    runtime = Runtime(pool, Connectors({"stripe": connector}), {"stripe": breaker}, counter)
    install(lambda: runtime)
    yield connector
    connector.close()
    pool.close()


def payment_row(db: psycopg.Connection, payment_id: str) -> tuple[str, str | None, str | None]:
    row = db.execute(
        "SELECT status, failure_code, psp_reference FROM payments WHERE id = %s", (payment_id,)
    ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def waiting_at_stripe(
    localstripe: LocalStripe, database_url: str, merchant: Merchant, *, capture_method: str
) -> str:
    """A payment with a 3-D Secure card that the worker took to REQUIRES_ACTION."""
    card = three_d_secure_method(localstripe, THREE_D_SECURE_CARDS[0])
    payment_id, authorize = create_payment(
        database_url, merchant, psp="stripe", token=card, capture_method=capture_method
    )
    drive_operation.fn(authorize)
    return payment_id


@pytest.mark.parametrize(
    ("capture_method", "success", "then", "code"),
    [
        ("automatic", True, "CAPTURED", None),
        ("manual", True, "AUTHORIZED", None),
        ("automatic", False, "FAILED", "payment_intent_authentication_failure"),
    ],
)
def test_a_3d_secure_card_waits_for_the_customer_then_ends_as_stripe_says(
    stripe_actors: StripeConnector,
    localstripe: LocalStripe,
    database_url: str,
    db: psycopg.Connection,
    merchant: Merchant,
    capture_method: str,
    success: bool,
    then: str,
    code: str | None,
) -> None:
    payment_id = waiting_at_stripe(
        localstripe, database_url, merchant, capture_method=capture_method
    )
    status, _, intent_id = payment_row(db, payment_id)
    assert status == "REQUIRES_ACTION" and intent_id is not None and intent_id.startswith("pi_")

    check_authentication.fn(payment_id)  # the customer has not answered: nothing changes
    assert payment_row(db, payment_id)[0] == "REQUIRES_ACTION"
    authenticate(localstripe, intent_id, success=success)
    check_authentication.fn(payment_id, asked_by="api")

    assert payment_row(db, payment_id)[:2] == (then, code)


def test_an_expired_3d_secure_payment_is_cancelled_at_stripe_then_failed(
    stripe_actors: StripeConnector,
    localstripe: LocalStripe,
    database_url: str,
    db: psycopg.Connection,
    merchant: Merchant,
) -> None:
    payment_id = waiting_at_stripe(localstripe, database_url, merchant, capture_method="automatic")
    db.execute(
        "UPDATE payments SET action_expires_at = now() - interval '1 second' WHERE id = %s",
        (payment_id,),
    )
    check_authentication.fn(payment_id)

    status, code, intent_id = payment_row(db, payment_id)
    assert (status, code) == ("FAILED", "authentication_expired")
    assert intent_id is not None
    with stripe_sdk(localstripe) as sdk:
        assert sdk.v1.payment_intents.retrieve(intent_id).status == "canceled"
