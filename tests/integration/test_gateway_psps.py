"""The gateway with two PSPs: the routing table chooses each new payment's
PSP, which the payment, its timeline and its list show; each PSP's callbacks
arrive at its own /webhooks/{name} and are verified by its own connector."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
import redis

from gateway.types import GatewayConfig
from payments.routing import Route
from payments.routing import RoutingTable
from payments.webhooks import new_webhook_secret
from psp.breaker import open_key
from psp.protocol import Connectors
from psp.standard_webhooks import WebhookSecret
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.callbacks import signed
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.gateway import simulators

pytestmark = pytest.mark.anyio

ALPHA_SECRET, BETA_SECRET = new_webhook_secret(), new_webhook_secret()


@pytest.fixture
async def two_psps(
    gateway_config: GatewayConfig, merchant: Merchant, redis_client: redis.Redis
) -> AsyncIterator[Gateway]:
    alpha = simulators("alpha", webhook_secrets=(WebhookSecret(ALPHA_SECRET),))
    beta = simulators("beta", webhook_secrets=(WebhookSecret(BETA_SECRET),))
    connectors = Connectors({**alpha.by_name, **beta.by_name})
    routing = RoutingTable(
        default="alpha",
        routes=(
            Route("beta", merchant=merchant.id, currency="USD"),
            Route("beta", currency="EUR", min_amount=10_000),
        ),
    )
    async with running_gateway(gateway_config, routing=routing, connectors=connectors) as running:
        yield running


@pytest.mark.parametrize(
    ("currency", "amount", "psp"),
    [
        ("USD", 500, "beta"),  # the merchant's USD rule
        ("EUR", 10_000, "beta"),  # the amount's bound is inclusive
        ("EUR", 9_999, "alpha"),  # below it: the default
        ("GBP", 50_000, "alpha"),
    ],
)
async def test_a_new_payment_goes_to_the_psp_the_routing_table_chooses_and_says_so(
    two_psps: Gateway, merchant: Merchant, currency: str, amount: int, psp: str
) -> None:
    created = await two_psps.create_payment(merchant.api_key, currency=currency, amount=amount)
    assert created.status_code == 201 and created.json()["psp"] == psp
    payment_id = created.json()["paymentId"]
    headers = two_psps.headers(merchant.api_key)
    read = await two_psps.client.get(f"/payments/{payment_id}", headers=headers)
    listed = await two_psps.client.get(
        f"/payments?orderId={read.json()['orderId']}", headers=headers
    )
    timeline = await two_psps.client.get(f"/payments/{payment_id}/events", headers=headers)
    assert read.json()["psp"] == psp and [p["psp"] for p in listed.json()["data"]] == [psp]
    [created_event] = timeline.json()["data"]
    assert (created_event["type"], created_event["detail"]) == ("payment.created", {"psp": psp})


async def test_another_merchants_usd_payment_goes_to_the_default(
    two_psps: Gateway, database_url: str
) -> None:
    other = new_merchant(database_url)
    created = await two_psps.create_payment(other.api_key, currency="USD", amount=500)
    assert created.json()["psp"] == "alpha"


CAPTURED = {
    "type": "payment.captured",
    "data": {"id": "psp_1", "reference": "pay_x", "status": "captured", "amount": 1,
             "currency": "EUR", "authorizedAmount": 1, "capturedAmount": 1},
}  # fmt: skip


def stored(db: psycopg.Connection, webhook_id: str) -> list[str]:
    rows = db.execute("SELECT provider FROM webhook_inbox WHERE webhook_id = %s", (webhook_id,))
    return [row[0] for row in rows]


async def test_a_psps_callback_is_verified_by_its_own_connector_and_stored_under_its_name(
    two_psps: Gateway, db: psycopg.Connection
) -> None:
    body, headers = signed(CAPTURED, secret=BETA_SECRET)
    at_alpha = await two_psps.client.post("/webhooks/alpha", content=body, headers=headers)
    at_nobody = await two_psps.client.post("/webhooks/gamma", content=body, headers=headers)
    assert (at_alpha.status_code, at_alpha.json()["code"]) == (401, "invalid_signature")
    assert (at_nobody.status_code, at_nobody.json()["code"]) == (404, "not_found")
    assert stored(db, headers["webhook-id"]) == [] and two_psps.work.webhooks == []
    at_beta = await two_psps.client.post("/webhooks/beta", content=body, headers=headers)
    assert at_beta.status_code == 200 and stored(db, headers["webhook-id"]) == ["beta"]
    assert len(two_psps.work.webhooks) == 1


async def test_readiness_names_each_psps_circuit(
    two_psps: Gateway, redis_client: redis.Redis
) -> None:
    redis_client.set(open_key("beta"), "1", px=5000)
    ready = (await two_psps.client.get("/readyz")).json()
    assert ready["status"] == "degraded"
    assert {k: v for k, v in ready["checks"].items() if k.startswith("psp")} == {
        "psp": "circuit_open",
        "psp:alpha": "ok",
        "psp:beta": "circuit_open",
    }
