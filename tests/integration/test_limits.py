"""Abuse limits: requests per key per second, the card-testing guard, and
card data or oversized bodies refused wherever they come."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import redis

from actors.card_testing import CardTestingCounter
from gateway.types import GatewayConfig
from payments.card_testing import CardTestingPolicy
from stack.ports import free_port
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.card_numbers import ASCII_SHAPES
from tests.support.card_numbers import SHAPES
from tests.support.card_numbers import holds_pan
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.anyio
PAN = "4111111111111111"


async def test_past_its_requests_per_second_a_key_gets_429_with_retry_after(
    gateway_config: GatewayConfig, merchant: Merchant, database_url: str, redis_client: redis.Redis
) -> None:
    other = new_merchant(database_url)
    async with running_gateway(gateway_config, rate_limit_per_second=5) as gateway:
        answers = await asyncio.gather(
            *(
                gateway.client.get("/payments", headers=gateway.headers(merchant.api_key))
                for _ in range(12)
            )
        )
        unaffected = await gateway.client.get("/payments", headers=gateway.headers(other.api_key))
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.json()["code"] == "rate_limited" for a in limited)
    assert all(int(a.headers["retry-after"]) >= 1 for a in limited)
    assert sum(a.status_code == 200 for a in answers) <= 10  # at most two one-second windows
    assert unaffected.status_code == 200


async def test_without_redis_requests_are_not_limited(
    gateway_config: GatewayConfig, merchant: Merchant, redis_client: redis.Redis
) -> None:
    config = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "rate_limit_per_second": 1}
    async with running_gateway(gateway_config, **config) as gateway:
        answers = [
            await gateway.client.get("/payments", headers=gateway.headers(merchant.api_key))
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]


async def test_a_key_whose_authorizations_are_mostly_declined_is_paused(
    gateway_config: GatewayConfig,
    merchant: Merchant,
    database_url: str,
    db: psycopg.Connection,
    redis_client: redis.Redis,
) -> None:
    policy = CardTestingPolicy(window=600, min_attempts=20, decline_ratio=0.8)
    key_id = db.execute(
        "SELECT id FROM api_keys WHERE merchant_id = %s", (merchant.id,)
    ).fetchone()[0]  # type: ignore[index]
    counter = CardTestingCounter(redis_client, policy)
    for _ in range(17):
        counter.record(key_id, declined=True)
    for _ in range(3):
        counter.record(key_id, declined=False)
    honest = new_merchant(database_url)
    async with running_gateway(gateway_config, card_testing=policy) as gateway:
        paused = await gateway.create_payment(merchant.api_key)
        reads = await gateway.client.get("/payments", headers=gateway.headers(merchant.api_key))
        others = await gateway.create_payment(honest.api_key)
    assert (paused.status_code, paused.json()["code"]) == (429, "card_testing_suspected")
    assert paused.headers["retry-after"] == "600"
    assert reads.status_code == 200 and others.status_code == 201


@pytest.mark.parametrize("where", ["query", "header", "request-id"])
async def test_a_card_number_in_a_header_or_the_query_is_refused_on_any_route(
    gateway_config: GatewayConfig, merchant: Merchant, redis_client: redis.Redis, where: str
) -> None:
    async with running_gateway(gateway_config) as gateway:
        headers = gateway.headers(merchant.api_key)
        if where == "query":
            response = await gateway.client.get("/healthz", params={"note": f"{PAN[:4]} {PAN[4:]}"})
        elif where == "header":
            response = await gateway.client.get("/payments", headers={**headers, "X-Note": PAN})
        else:
            response = await gateway.client.get("/readyz", headers={"X-Request-Id": PAN})
    assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
    assert PAN not in response.text and PAN not in str(response.headers)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_card_number_in_any_shape_in_a_header_or_the_query_is_refused(
    gateway_config: GatewayConfig, merchant: Merchant, redis_client: redis.Redis, shape: str
) -> None:
    async with running_gateway(gateway_config) as gateway:
        headers = gateway.headers(merchant.api_key)
        answers = [
            await gateway.client.get("/healthz", params={"note": shape}),
            await gateway.client.get("/payments", headers={**headers, "X-Note": shape.encode()}),
            await gateway.client.get("/readyz", headers={"X-Request-Id": shape.encode()}),
        ]
    for response in answers:
        assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
        assert not holds_pan(response.text) and not holds_pan(str(response.headers))


@pytest.mark.parametrize("shape", ASCII_SHAPES)
async def test_a_request_id_that_looks_like_a_card_number_is_replaced_never_echoed_or_stored(
    gateway_config: GatewayConfig,
    merchant: Merchant,
    redis_client: redis.Redis,
    db: psycopg.Connection,
    shape: str,
) -> None:
    body = {"orderId": "o-1", "amount": 1999, "currency": "EUR", "methodToken": "tok_visa"}
    headers = {"X-Request-Id": shape, "Idempotency-Key": "k-1"}
    async with running_gateway(gateway_config) as gateway:
        response = await gateway.client.post(
            "/payments", json=body, headers={**gateway.headers(merchant.api_key), **headers}
        )
    assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
    assert response.headers["x-request-id"].startswith("req_")
    assert not holds_pan(response.text) and not holds_pan(str(response.headers))
    audited = db.execute("SELECT count(*) FROM audit_log WHERE request_id = %s", (shape,))
    created = db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert audited.fetchone() == (0,) and created.fetchone() == (0,)


async def test_on_tls_every_answer_carries_hsts(
    gateway_config: GatewayConfig, merchant: Merchant, redis_client: redis.Redis
) -> None:
    async with running_gateway(gateway_config, hsts=True) as gateway:
        ok = await gateway.client.get("/healthz")
        refused = await gateway.client.get("/payments")
    for response in (ok, refused):
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
