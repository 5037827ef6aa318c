"""The idempotency table of DESIGN.md §2, against real Postgres and Redis."""

import asyncio
import uuid

import psycopg
import pytest
import redis

from gateway.types import GatewayConfig
from stack.ports import free_port
from tests.conftest import Merchant
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.anyio

BODY = {"orderId": "order-1", "amount": 1999, "currency": "EUR", "methodToken": "tok_visa"}


def payments_of(db: psycopg.Connection, merchant: Merchant) -> int:
    row = db.execute(
        "SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,)
    ).fetchone()
    return int(row[0])  # type: ignore[index]


async def post(gateway: Gateway, merchant: Merchant, key: str | None, body: dict = BODY):  # type: ignore[no-untyped-def]
    headers = gateway.headers(merchant.api_key, key)
    return await gateway.client.post("/payments", json=body, headers=headers)


async def test_the_same_key_and_request_replays_the_first_answer(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    first = await post(gateway, merchant, "k-1")
    again = await post(gateway, merchant, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert payments_of(db, merchant) == 1
    authorization = db.execute(
        "SELECT id FROM payment_operations WHERE payment_id = %s", (first.json()["paymentId"],)
    ).fetchone()
    assert authorization is not None and gateway.work.nudged == [authorization[0]]


async def test_a_replay_is_byte_for_byte_even_with_keys_in_another_order(
    gateway: Gateway, merchant: Merchant
) -> None:
    first = await post(gateway, merchant, "k-1")
    reordered = dict(reversed(list(BODY.items())))
    again = await post(gateway, merchant, "k-1", reordered)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


async def test_the_same_key_with_another_request_is_refused_with_422(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    await post(gateway, merchant, "k-1")
    other = await post(gateway, merchant, "k-1", {**BODY, "amount": 2000})
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert payments_of(db, merchant) == 1


async def test_a_missing_key_is_refused_with_400(gateway: Gateway, merchant: Merchant) -> None:
    response = await post(gateway, merchant, None)
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"


@pytest.mark.parametrize("key", ["x" * 256, "tab\there", "é-not-ascii"])
async def test_a_malformed_key_is_refused_with_400(
    gateway: Gateway, merchant: Merchant, key: str
) -> None:
    response = await gateway.client.post(
        "/payments",
        json=BODY,
        headers={"Authorization": f"Bearer {merchant.api_key}", "Idempotency-Key": key.encode()},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"


async def test_keys_are_scoped_per_merchant(
    gateway: Gateway, merchant: Merchant, database_url: str, db: psycopg.Connection
) -> None:
    from tests.conftest import new_merchant

    other = new_merchant(database_url)
    mine = await post(gateway, merchant, "shared-key")
    theirs = await post(gateway, other, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["paymentId"] != theirs.json()["paymentId"]


async def test_a_validation_failure_is_not_stored(gateway: Gateway, merchant: Merchant) -> None:
    invalid = await post(gateway, merchant, "k-1", {**BODY, "amount": -5})
    valid = await post(gateway, merchant, "k-1")
    assert invalid.status_code == 400 and valid.status_code == 201
    assert "idempotent-replayed" not in valid.headers


async def test_a_request_still_in_flight_answers_409_with_retry_after(
    gateway: Gateway, merchant: Merchant, database_url: str
) -> None:
    # Hold the outbox so the first request stops inside its transaction.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
        first = asyncio.create_task(post(gateway, merchant, "k-1"))
        await asyncio.sleep(0.3)
        second = await post(gateway, merchant, "k-1")
        assert not first.done()
        blocker.rollback()
    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_use"
    assert second.headers["retry-after"] == "1"
    assert (await first).status_code == 201
    assert (await post(gateway, merchant, "k-1")).headers["idempotent-replayed"] == "true"


async def test_after_a_redis_flush_the_replay_comes_from_postgres_and_charges_nothing_new(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, redis_client: redis.Redis
) -> None:
    first = await post(gateway, merchant, "k-1")
    redis_client.flushall()
    again = await post(gateway, merchant, "k-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert payments_of(db, merchant) == 1
    assert len(gateway.work.nudged) == 1
    # ... and the answer is cached in Redis again.
    assert redis_client.get(f"idem:{merchant.id}:k-1") is not None


async def test_with_redis_down_payments_are_accepted_and_replayed_from_postgres(
    gateway_config: GatewayConfig, merchant: Merchant, db: psycopg.Connection
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with running_gateway(gateway_config, redis_url=dead_redis) as gateway:
        first = await post(gateway, merchant, "k-1")
        again = await post(gateway, merchant, "k-1")
        ready = await gateway.client.get("/readyz")
    assert first.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert payments_of(db, merchant) == 1
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"


async def test_with_redis_down_concurrent_requests_with_one_key_still_make_one_payment(
    gateway_config: GatewayConfig, merchant: Merchant, db: psycopg.Connection
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with running_gateway(gateway_config, redis_url=dead_redis) as gateway:
        answers = await asyncio.gather(*(post(gateway, merchant, "k-1") for _ in range(20)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.content for answer in answers}) == 1
    assert payments_of(db, merchant) == 1


async def test_a_key_past_its_retention_is_a_new_request(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, redis_client: redis.Redis
) -> None:
    first = await post(gateway, merchant, "k-1", {**BODY, "orderId": "order-a"})
    db.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
        " WHERE merchant_id = %s",
        (merchant.id,),
    )
    redis_client.flushall()
    later = await post(gateway, merchant, "k-1", {**BODY, "orderId": "order-b"})
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert later.json()["paymentId"] != first.json()["paymentId"]


async def test_fifty_concurrent_requests_with_one_key_make_one_payment(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    answers = await asyncio.gather(*(post(gateway, merchant, "storm") for _ in range(50)))
    created = [a for a in answers if a.status_code == 201]
    assert {a.status_code for a in answers} <= {201, 409}
    assert created and len({a.json()["paymentId"] for a in created}) == 1
    assert all(
        a.json()["code"] == "idempotency_key_in_use" for a in answers if a.status_code == 409
    )
    assert payments_of(db, merchant) == 1
    assert len(gateway.work.nudged) == 1


async def test_fifty_concurrent_requests_for_one_order_under_different_keys_make_one_payment(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    answers = await asyncio.gather(*(post(gateway, merchant, uuid.uuid4().hex) for _ in range(50)))
    created = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code == 409]
    others = [(a.status_code, a.text) for a in answers if a.status_code not in (201, 409)]
    assert len(created) == 1 and len(refused) == 49, others
    payment_id = created[0].json()["paymentId"]
    assert all(a.json()["code"] == "order_already_exists" for a in refused)
    assert all(a.json()["paymentId"] == payment_id for a in refused)
    assert payments_of(db, merchant) == 1
