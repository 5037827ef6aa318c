"""Registering and managing webhook endpoints over the API."""

from __future__ import annotations

import psycopg
import pytest

from gateway.types import GatewayConfig
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.anyio

URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
async def dev_gateway(gateway_config: GatewayConfig, redis_client: object):  # type: ignore[no-untyped-def]
    async with running_gateway(gateway_config, webhooks_allow_private=True) as running:
        yield running


async def register(gateway: Gateway, merchant: Merchant, **body: object):  # type: ignore[no-untyped-def]
    payload = {"url": URL, "eventTypes": ["*"], **body}
    return await gateway.client.post(
        "/webhook-endpoints", json=payload, headers=gateway.headers(merchant.api_key)
    )


async def test_an_endpoint_is_registered_and_its_secret_shown_only_once(
    dev_gateway: Gateway, merchant: Merchant
) -> None:
    created = await register(
        dev_gateway, merchant, eventTypes=["payment.captured", "refund.succeeded"]
    )
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "enabled"
    headers = dev_gateway.headers(merchant.api_key)
    listed = (await dev_gateway.client.get("/webhook-endpoints", headers=headers)).json()["data"]
    read = (
        await dev_gateway.client.get(
            f"/webhook-endpoints/{endpoint['endpointId']}", headers=headers
        )
    ).json()
    assert [e["endpointId"] for e in listed] == [endpoint["endpointId"]]
    assert "secret" not in listed[0] and "secret" not in read


async def test_a_rotation_returns_a_new_secret_and_keeps_the_old_one_for_the_grace(
    dev_gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    endpoint = (await register(dev_gateway, merchant)).json()
    rotated = await dev_gateway.client.post(
        f"/webhook-endpoints/{endpoint['endpointId']}/rotate-secret",
        json={"graceSeconds": 3600},
        headers=dev_gateway.headers(merchant.api_key),
    )
    assert rotated.status_code == 200
    assert (
        rotated.json()["secret"] != endpoint["secret"] and rotated.json()["previousSecretRetiresAt"]
    )
    row = db.execute(
        "SELECT previous_secret FROM webhook_endpoints WHERE id = %s", (endpoint["endpointId"],)
    ).fetchone()
    assert row == (endpoint["secret"],)


@pytest.mark.parametrize(
    ("url", "types"),
    [
        ("ftp://example.com/hooks", ["*"]),
        ("https://user:pw@example.com/hooks", ["*"]),
        (URL, ["payment.exploded"]),
        (URL, []),
        ("http://nonexistent.invalid/hooks", ["*"]),
    ],
)
async def test_bad_urls_and_event_types_are_refused(
    dev_gateway: Gateway, merchant: Merchant, url: str, types: list[str]
) -> None:
    response = await register(dev_gateway, merchant, url=url, eventTypes=types)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/latest/meta-data",
    ],
)
async def test_without_permission_private_and_loopback_urls_are_refused(
    gateway: Gateway, merchant: Merchant, url: str
) -> None:
    response = await register(gateway, merchant, url=url)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert response.json()["errors"][0]["pointer"] == "/url"


async def test_endpoints_need_the_admin_role_and_belong_to_their_merchant(
    dev_gateway: Gateway, merchant: Merchant, database_url: str
) -> None:
    endpoint = (await register(dev_gateway, merchant)).json()
    writer = new_merchant(database_url, roles=["payments:write", "payments:read"])
    refused = await register(dev_gateway, writer)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_role")
    other = new_merchant(database_url)
    headers = dev_gateway.headers(other.api_key)
    path = f"/webhook-endpoints/{endpoint['endpointId']}"
    answers = [
        await dev_gateway.client.get(path, headers=headers),
        await dev_gateway.client.delete(path, headers=headers),
        await dev_gateway.client.post(f"{path}/rotate-secret", headers=headers),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert (await dev_gateway.client.get("/webhook-endpoints", headers=headers)).json()[
        "data"
    ] == []


async def test_a_deleted_endpoint_is_gone_and_a_disabled_one_can_be_enabled(
    dev_gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    headers = dev_gateway.headers(merchant.api_key)
    first = (await register(dev_gateway, merchant)).json()
    second = (await register(dev_gateway, merchant)).json()
    path = f"/webhook-endpoints/{first['endpointId']}"
    assert (await dev_gateway.client.delete(path, headers=headers)).status_code == 204
    assert (await dev_gateway.client.get(path, headers=headers)).status_code == 404
    db.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'answered 410 Gone'"
        " WHERE id = %s",
        (second["endpointId"],),
    )
    enabled = await dev_gateway.client.post(
        f"/webhook-endpoints/{second['endpointId']}/enable", headers=headers
    )
    assert enabled.json()["status"] == "enabled" and enabled.json()["disabledReason"] is None


async def test_dead_letters_are_listed_and_replayed(
    dev_gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    endpoint = (await register(dev_gateway, merchant)).json()
    db.execute(
        "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, event_id, event_type, payload,"
        " status, attempts, last_status) VALUES ('wd_dead1', %s, %s, 'evt_1', 'payment.captured', '{}',"
        " 'dead', 9, 500)",
        (endpoint["endpointId"], merchant.id),
    )
    headers = dev_gateway.headers(merchant.api_key)
    dead = (
        await dev_gateway.client.get(
            "/webhook-deliveries", params={"status": "dead"}, headers=headers
        )
    ).json()
    assert [(d["deliveryId"], d["attempts"], d["lastStatus"]) for d in dead["data"]] == [
        ("wd_dead1", 9, 500)
    ]
    replayed = await dev_gateway.client.post("/webhook-deliveries/wd_dead1/replay", headers=headers)
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    assert replayed.json()["attempts"] == 0


async def test_deleting_enabling_and_replaying_are_audited_as_the_key_that_did_it(
    dev_gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    headers = dev_gateway.headers(merchant.api_key)
    first = (await register(dev_gateway, merchant)).json()
    second = (await register(dev_gateway, merchant)).json()
    db.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'test' WHERE id = %s",
        (second["endpointId"],),
    )
    db.execute(
        "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, event_id, event_type, payload,"
        " status, attempts, last_status) VALUES ('wd_dead2', %s, %s, 'evt_2', 'payment.captured',"
        " '{}', 'dead', 9, 500)",
        (second["endpointId"], merchant.id),
    )
    await dev_gateway.client.delete(f"/webhook-endpoints/{first['endpointId']}", headers=headers)
    await dev_gateway.client.post(
        f"/webhook-endpoints/{second['endpointId']}/enable", headers=headers
    )
    await dev_gateway.client.post("/webhook-deliveries/wd_dead2/replay", headers=headers)

    rows = db.execute(
        "SELECT action, object_id, actor FROM audit_log WHERE merchant_id = %s"
        " AND action IN ('webhook_endpoint.deleted', 'webhook_endpoint.enabled',"
        " 'webhook_delivery.replayed') ORDER BY seq",
        (merchant.id,),
    ).fetchall()
    assert [(action, object_id) for action, object_id, _ in rows] == [
        ("webhook_endpoint.deleted", first["endpointId"]),
        ("webhook_endpoint.enabled", second["endpointId"]),
        ("webhook_delivery.replayed", "wd_dead2"),
    ]
    [(key_id,)] = db.execute(
        "SELECT id FROM api_keys WHERE merchant_id = %s", (merchant.id,)
    ).fetchall()
    assert {actor for _, _, actor in rows} == {key_id}
