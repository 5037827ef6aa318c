"""Every route, walked from the OpenAPI endpoint list: another merchant's
objects are 404 everywhere and never listed; a key without a route's role is
403 on it; a merchant's key is 403 on every operator route and an operator's
on every merchant route, whatever their roles. A route added without these
protections fails here."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from gateway.app import ENDPOINTS
from gateway.auth import MERCHANT_ROLES
from gateway.auth import OPERATOR_ROLES
from gateway.auth import MerchantRole
from gateway.auth import OperatorRole
from gateway.openapi import Endpoint
from tests.conftest import Merchant
from tests.conftest import Operator
from tests.conftest import new_merchant
from tests.conftest import new_operator
from tests.support.gateway import Gateway

pytestmark = pytest.mark.anyio

# Routes that create the caller's own objects: nothing of another merchant's to reach.
CREATES_OWN = {
    ("POST", "/payments"),
    ("POST", "/webhook-endpoints"),
    ("POST", "/api-keys"),
    ("POST", "/reconciliations"),
    ("POST", "/operators"),
}
# Routes no merchant key passes: nothing of a merchant's to reach through them.
OPERATORS_ONLY = {
    (e.method, e.path)
    for e in ENDPOINTS
    if e.roles and not any(isinstance(r, MerchantRole) for r in e.roles)
}
MERCHANTS_ONLY = {
    (e.method, e.path)
    for e in ENDPOINTS
    if e.roles and not any(isinstance(r, OperatorRole) for r in e.roles)
}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/payments/{paymentId}/capture"): {},
    ("POST", "/payments/{paymentId}/cancel"): {},
    ("POST", "/payments/{paymentId}/refunds"): {},
    ("POST", "/webhook-endpoints/{endpointId}/rotate-secret"): {},
    ("POST", "/api-keys/{keyId}/rotate"): {},
}


async def objects_of(
    gateway: Gateway, owner: Merchant, db: psycopg.Connection, operator: Operator
) -> dict[str, str]:
    """One of each kind of object, belonging to `owner` (a run: to `operator`)."""
    headers = gateway.headers(owner.api_key)
    payment = (
        await gateway.create_payment(owner.api_key, orderId=f"secret-{uuid.uuid4().hex}")
    ).json()
    db.execute(
        "UPDATE payments SET status = 'CAPTURED', authorized_amount = amount,"
        " captured_amount = amount, psp_reference = 'psp_x' WHERE id = %s",
        (payment["paymentId"],),
    )
    refund = (
        await gateway.client.post(
            f"/payments/{payment['paymentId']}/refunds",
            json={"amount": 1},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
    ).json()
    endpoint = (
        await gateway.client.post(
            "/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/h", "eventTypes": ["*"]},
            headers=headers,
        )
    ).json()
    db.execute(
        "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, event_id, event_type,"
        " payload, status) VALUES (%s, %s, %s, 'evt_x', 'payment.created', '{}', 'dead')",
        (f"wd_{uuid.uuid4().hex}", endpoint["endpointId"], owner.id),
    )
    delivery = db.execute(
        "SELECT id FROM webhook_deliveries WHERE merchant_id = %s", (owner.id,)
    ).fetchone()
    run = (
        await gateway.client.post(
            "/reconciliations",
            json={"pspBatch": "2026-11-24"},
            headers=gateway.headers(operator.api_key),
        )
    ).json()
    key = (
        await gateway.client.post("/api-keys", json={"roles": ["payments:read"]}, headers=headers)
    ).json()
    return {
        "paymentId": payment["paymentId"],
        "refundId": refund["refundId"],
        "endpointId": endpoint["endpointId"],
        "deliveryId": str(delivery[0]),  # type: ignore[index]
        "reconciliationId": run["reconciliationId"],
        "keyId": key["keyId"],
        "orderId": payment["orderId"],
    }


async def call(
    gateway: Gateway, endpoint: Endpoint, ids: dict[str, str], key: str
) -> httpx.Response:
    path = endpoint.path
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    headers = {**gateway.headers(key), "Idempotency-Key": uuid.uuid4().hex}
    body = BODIES.get((endpoint.method, endpoint.path))
    return await gateway.client.request(endpoint.method, path, json=body, headers=headers)


@pytest.fixture
async def dev_gateway(gateway_config, redis_client):  # type: ignore[no-untyped-def]
    from tests.support.gateway import running_gateway

    async with running_gateway(gateway_config, webhooks_allow_private=True) as running:
        yield running


async def test_another_merchants_objects_are_404_on_every_route_and_never_listed(
    dev_gateway: Gateway,
    merchant: Merchant,
    operator: Operator,
    database_url: str,
    db: psycopg.Connection,
) -> None:
    gateway = dev_gateway
    ids = await objects_of(gateway, merchant, db, operator)
    intruder = new_merchant(database_url)
    walked = set()
    for endpoint in ENDPOINTS:
        route = (endpoint.method, endpoint.path)
        if not endpoint.roles or route in CREATES_OWN | OPERATORS_ONLY:
            continue
        walked.add(route)
        response = await call(gateway, endpoint, ids, intruder.api_key)
        if "{" in endpoint.path:
            assert response.status_code == 404, (route, response.status_code, response.text)
            assert response.json()["code"] == "not_found"
        else:
            assert response.status_code == 200, (route, response.text)
            assert not set(ids.values()) & set(_strings(response.json())), route
    listed = await gateway.client.get(
        "/payments", params={"orderId": ids["orderId"]}, headers=gateway.headers(intruder.api_key)
    )
    entries = await gateway.client.get(
        "/ledger/entries",
        params={"paymentId": ids["paymentId"]},
        headers=gateway.headers(intruder.api_key),
    )
    assert listed.json()["data"] == [] and entries.json()["data"] == []
    protected = {(e.method, e.path) for e in ENDPOINTS if e.roles}
    assert walked == protected - CREATES_OWN - OPERATORS_ONLY


async def test_every_route_refuses_a_key_without_its_role(
    dev_gateway: Gateway,
    merchant: Merchant,
    operator: Operator,
    database_url: str,
    db: psycopg.Connection,
) -> None:
    gateway = dev_gateway
    ids = await objects_of(gateway, merchant, db, operator)
    for endpoint in ENDPOINTS:
        accepted = {r.value for r in endpoint.roles}
        if any(isinstance(r, MerchantRole) for r in endpoint.roles):
            lacking = new_merchant(database_url, [r for r in MERCHANT_ROLES if r not in accepted])
            response = await call(gateway, endpoint, ids, lacking.api_key)
            assert (response.status_code, response.json()["code"]) == (
                403,
                "insufficient_role",
            ), (endpoint.method, endpoint.path, "merchant")
        if any(isinstance(r, OperatorRole) for r in endpoint.roles):
            unskilled = new_operator(database_url, [r for r in OPERATOR_ROLES if r not in accepted])
            response = await call(gateway, endpoint, ids, unskilled.api_key)
            assert (response.status_code, response.json()["code"]) == (
                403,
                "insufficient_role",
            ), (endpoint.method, endpoint.path, "operator")


async def test_a_merchant_key_is_403_on_every_operator_route_and_an_operator_key_on_every_merchant_route(
    dev_gateway: Gateway,
    merchant: Merchant,
    operator: Operator,
    db: psycopg.Connection,
) -> None:
    """Both keys hold every role of their kind, `admin` included: the names
    are shared, the powers are not."""
    gateway = dev_gateway
    ids = await objects_of(gateway, merchant, db, operator)
    assert {("POST", "/reconciliations"), ("POST", "/operators")} <= OPERATORS_ONLY
    assert {("POST", "/payments"), ("POST", "/api-keys")} <= MERCHANTS_ONLY

    def made() -> tuple[object, ...]:
        row = db.execute(
            "SELECT (SELECT count(*) FROM reconciliations), (SELECT count(*) FROM operators),"
            " (SELECT count(*) FROM api_keys), (SELECT count(*) FROM payments)"
        ).fetchone()
        assert row is not None
        return tuple(row)

    before = made()
    for endpoint in ENDPOINTS:
        route = (endpoint.method, endpoint.path)
        if route in OPERATORS_ONLY:
            key = merchant.api_key
        elif route in MERCHANTS_ONLY:
            key = operator.api_key
        else:
            continue
        response = await call(gateway, endpoint, ids, key)
        assert (response.status_code, response.json()["code"]) == (403, "insufficient_role"), route
    assert made() == before


async def test_every_route_without_a_key_is_401_except_the_public_ones(
    gateway: Gateway,
) -> None:
    public = {(e.method, e.path) for e in ENDPOINTS if not e.roles}
    assert public == {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/webhooks/{provider}")}
    for endpoint in ENDPOINTS:
        if not endpoint.roles:
            continue
        path = endpoint.path.replace("{", "").replace("}", "")
        response = await gateway.client.request(endpoint.method, path)
        assert response.status_code == 401, (endpoint.method, endpoint.path)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []
