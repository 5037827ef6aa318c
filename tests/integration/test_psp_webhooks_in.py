"""PSP webhooks in: signed with the official standardwebhooks library, as a PSP
would; forged, stale and replayed ones refused or ignored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import psycopg
import pytest
import redis
from standardwebhooks import Webhook

from gateway.types import GatewayConfig
from payments.webhooks import new_webhook_secret
from psp.standard_webhooks import WebhookSecret
from tests.support.callbacks import signed
from tests.support.card_numbers import SHAPES
from tests.support.card_numbers import holds_pan
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.gateway import simulators

pytestmark = pytest.mark.anyio

SECRET = new_webhook_secret()
OLD_SECRET = new_webhook_secret()


def event(reference: str = "pay_unknown") -> dict:
    return {
        "id": "e1",
        "type": "payment.captured",
        "data": {
            "id": "psp_1",
            "reference": reference,
            "status": "captured",
            "amount": 1000,
            "currency": "EUR",
            "authorizedAmount": 1000,
            "capturedAmount": 1000,
        },
    }


@pytest.fixture
async def hooks(gateway_config: GatewayConfig, redis_client: redis.Redis):  # type: ignore[no-untyped-def]
    secrets = (
        WebhookSecret(SECRET),
        WebhookSecret(OLD_SECRET, datetime.now(UTC) + timedelta(hours=1)),
    )
    connectors = simulators("simulator", webhook_secrets=secrets)
    async with running_gateway(gateway_config, connectors=connectors) as running:
        yield running


def inbox(db: psycopg.Connection, webhook_id: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM webhook_inbox WHERE webhook_id = %s", (webhook_id,)
    ).fetchone()
    return int(row[0])  # type: ignore[index]


async def post(gateway: Gateway, raw: bytes, headers: dict[str, str], provider: str = "simulator"):  # type: ignore[no-untyped-def]
    return await gateway.client.post(f"/webhooks/{provider}", content=raw, headers=headers)


async def test_a_signed_webhook_is_stored_acknowledged_and_handed_to_an_actor(
    hooks: Gateway, db: psycopg.Connection
) -> None:
    raw, headers = signed(event("pay_123"), secret=SECRET)
    response = await post(hooks, raw, headers)
    assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}
    row = db.execute(
        "SELECT id, event_type, reference, status FROM webhook_inbox WHERE webhook_id = %s",
        (headers["webhook-id"],),
    ).fetchone()
    assert row is not None and row[1:] == ("payment.captured", "pay_123", "pending")
    assert hooks.work.webhooks == [row[0]]


@pytest.mark.parametrize(
    "tamper",
    [
        "wrong-secret",
        "stale",
        "from-the-future",
        "no-signature",
        "body-changed",
        "garbage-signature",
    ],
)
async def test_a_forged_stale_or_unsigned_webhook_is_401_and_nothing_is_stored(
    hooks: Gateway, db: psycopg.Connection, tamper: str
) -> None:
    now = datetime.now(UTC)
    raw, headers = signed(
        event(),
        secret=new_webhook_secret() if tamper == "wrong-secret" else SECRET,
        at={"stale": now - timedelta(minutes=6), "from-the-future": now + timedelta(minutes=6)}.get(
            tamper, now
        ),
    )
    if tamper == "no-signature":
        del headers["webhook-signature"]
    if tamper == "body-changed":
        raw = raw.replace(b"1000", b"9000", 1)
    if tamper == "garbage-signature":
        headers["webhook-signature"] = "not-a-signature"
    response = await post(hooks, raw, headers)
    assert (response.status_code, response.json()["code"]) == (401, "invalid_signature")
    assert inbox(db, headers["webhook-id"]) == 0
    assert hooks.work.webhooks == []


async def test_a_replayed_webhook_id_is_200_with_no_effect_even_after_a_redis_flush(
    hooks: Gateway, db: psycopg.Connection, redis_client: redis.Redis
) -> None:
    raw, headers = signed(event(), secret=SECRET)
    first = await post(hooks, raw, headers)
    again = await post(hooks, raw, headers)
    redis_client.flushall()
    after_flush = await post(hooks, raw, headers)
    assert first.json()["duplicate"] is False
    assert again.json()["duplicate"] is True and after_flush.json()["duplicate"] is True
    assert inbox(db, headers["webhook-id"]) == 1 and len(hooks.work.webhooks) == 1


async def test_twenty_copies_of_one_webhook_at_once_are_stored_once(
    hooks: Gateway, db: psycopg.Connection
) -> None:
    raw, headers = signed(event(), secret=SECRET)
    answers = await asyncio.gather(*(post(hooks, raw, headers) for _ in range(20)))
    assert {a.status_code for a in answers} <= {200, 409}
    assert inbox(db, headers["webhook-id"]) == 1 and len(hooks.work.webhooks) == 1


async def test_during_a_rotation_the_previous_secret_is_accepted_until_it_retires(
    gateway_config: GatewayConfig, db: psycopg.Connection, redis_client: redis.Redis
) -> None:
    retired = (
        WebhookSecret(SECRET),
        WebhookSecret(OLD_SECRET, datetime.now(UTC) - timedelta(seconds=1)),
    )
    raw, headers = signed(event(), secret=OLD_SECRET)
    after = simulators("simulator", webhook_secrets=retired)
    async with running_gateway(gateway_config, connectors=after) as after_grace:
        refused = await post(after_grace, raw, headers)
    graceful = (
        WebhookSecret(SECRET),
        WebhookSecret(OLD_SECRET, datetime.now(UTC) + timedelta(hours=1)),
    )
    during = simulators("simulator", webhook_secrets=graceful)
    async with running_gateway(gateway_config, connectors=during) as during_grace:
        accepted = await post(during_grace, raw, headers)
    assert refused.status_code == 401 and accepted.status_code == 200


async def test_an_unknown_provider_is_404_and_a_signed_non_event_is_400(hooks: Gateway) -> None:
    raw, headers = signed(event(), secret=SECRET)
    assert (await post(hooks, raw, headers, provider="acme")).status_code == 404
    raw, headers = signed({"hello": "world"}, secret=SECRET)
    response = await post(hooks, raw, headers)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_webhook_carrying_a_card_number_in_any_shape_is_refused_and_not_stored(
    hooks: Gateway, db: psycopg.Connection, shape: str
) -> None:
    in_value, in_value_headers = signed(event(shape), secret=SECRET)
    keyed = event()
    keyed["data"]["card"] = {shape: "in a key"}
    in_key, in_key_headers = signed(keyed, secret=SECRET)
    for raw, headers in ((in_value, in_value_headers), (in_key, in_key_headers)):
        response = await post(hooks, raw, headers)
        assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
        assert not holds_pan(response.text)
        assert inbox(db, headers["webhook-id"]) == 0
    assert hooks.work.webhooks == []


@pytest.mark.parametrize("depth", [33, 1000, 5000])
async def test_a_webhook_nested_deeper_than_32_levels_is_400_and_not_stored(
    hooks: Gateway, db: psycopg.Connection, depth: int
) -> None:
    nested = b'{"type": "payment.captured", "data": {"deep": ' + b"[" * depth + b"]" * depth + b"}}"
    webhook_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(webhook_id, at, nested.decode()),
        "content-type": "application/json",
    }
    response = await post(hooks, nested, headers)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert inbox(db, webhook_id) == 0 and hooks.work.webhooks == []
