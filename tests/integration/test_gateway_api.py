"""The merchant API over HTTP: auth, tenancy, validation, card data, lists."""

import uuid

import psycopg
import pytest
import redis

from gateway.types import GatewayConfig
from psp.breaker import open_key
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.card_numbers import SHAPES
from tests.support.card_numbers import holds_pan
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.gateway import simulators

pytestmark = pytest.mark.anyio

PAN = "4111111111111111"


async def test_a_created_payment_is_pending_and_readable(
    gateway: Gateway, merchant: Merchant
) -> None:
    created = await gateway.create_payment(
        merchant.api_key, captureMethod="manual", description="two books", metadata={"sku": "b-2"}
    )
    assert created.status_code == 201
    payment = created.json()
    assert payment["status"] == "PENDING" and payment["captureMethod"] == "manual"
    assert payment["paymentId"].startswith("pay_") and payment["metadata"] == {"sku": "b-2"}
    read = await gateway.client.get(
        f"/payments/{payment['paymentId']}", headers=gateway.headers(merchant.api_key)
    )
    assert read.status_code == 200 and read.json() == payment
    timeline = await gateway.client.get(
        f"/payments/{payment['paymentId']}/events", headers=gateway.headers(merchant.api_key)
    )
    [event] = timeline.json()["data"]
    assert (event["type"], event["toStatus"], event["source"]) == (
        "payment.created",
        "PENDING",
        "api",
    )


@pytest.mark.parametrize(("currency", "amount"), [("MGA", 50_000), ("VED", 1_999), ("XCG", 2_500)])
async def test_a_payment_in_a_recent_iso_4217_currency_is_accepted(
    gateway: Gateway, merchant: Merchant, currency: str, amount: int
) -> None:
    created = await gateway.create_payment(merchant.api_key, currency=currency, amount=amount)
    assert created.status_code == 201, created.text
    assert (created.json()["currency"], created.json()["amount"]) == (currency, amount)


async def test_no_key_is_401_with_a_bearer_challenge(gateway: Gateway) -> None:
    response = await gateway.client.get("/payments")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_or_revoked_key_is_401(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    unknown = await gateway.client.get("/payments", headers=gateway.headers("sk_nope"))
    assert unknown.json()["code"] == "invalid_api_key"
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE merchant_id = %s", (merchant.id,))
    revoked = await gateway.client.get("/payments", headers=gateway.headers(merchant.api_key))
    assert revoked.status_code == 401


async def test_a_key_without_the_role_is_403(gateway: Gateway, database_url: str) -> None:
    reader = new_merchant(database_url, roles=["payments:read"])
    refused = await gateway.create_payment(reader.api_key)
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_role"
    assert (
        await gateway.client.get("/payments", headers=gateway.headers(reader.api_key))
    ).status_code == 200


async def test_another_merchants_payment_is_404_everywhere(
    gateway: Gateway, merchant: Merchant, database_url: str
) -> None:
    payment = (await gateway.create_payment(merchant.api_key, orderId="secret-order")).json()
    intruder = new_merchant(database_url)
    headers = gateway.headers(intruder.api_key)
    for path in (f"/payments/{payment['paymentId']}", f"/payments/{payment['paymentId']}/events"):
        response = await gateway.client.get(path, headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    listed = await gateway.client.get(
        "/payments", params={"orderId": "secret-order"}, headers=headers
    )
    assert listed.json()["data"] == []


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"amount": "1999"}, "/amount"),
        ({"amount": 19.99}, "/amount"),
        ({"amount": 0}, "/amount"),
        ({"amount": 10**13}, "/amount"),
        ({"currency": "eur"}, "/currency"),
        ({"currency": "XYZ"}, "/currency"),
        ({"currency": "XAU"}, "/currency"),
        ({"captureMethod": "later"}, "/captureMethod"),
        ({"methodToken": "tok visa"}, "/methodToken"),
        ({"orderId": ""}, "/orderId"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "/metadata"),
        ({"status": "CAPTURED"}, "/status"),
        ({"capturedAmount": 1999}, "/capturedAmount"),
    ],
)
async def test_an_invalid_field_is_400_naming_the_field_and_nothing_is_stored(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, change: dict, pointer: str
) -> None:
    response = await gateway.create_payment(merchant.api_key, **change)
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert pointer in [error["pointer"] for error in problem["errors"]]
    count = db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert count.fetchone() == (0,)


async def test_a_body_that_is_not_a_json_object_is_400_and_not_json_is_415(
    gateway: Gateway, merchant: Merchant
) -> None:
    headers = gateway.headers(merchant.api_key, "k")
    broken = await gateway.client.post(
        "/payments", content=b"{nope", headers={**headers, "Content-Type": "application/json"}
    )
    array = await gateway.client.post("/payments", json=[1, 2], headers=headers)
    text = await gateway.client.post(
        "/payments", content=b"amount=1", headers={**headers, "Content-Type": "text/plain"}
    )
    assert (broken.status_code, broken.json()["code"]) == (400, "validation_error")
    assert (array.status_code, array.json()["code"]) == (400, "validation_error")
    assert (text.status_code, text.json()["code"]) == (415, "unsupported_media_type")


async def test_a_body_over_the_limit_is_413(gateway: Gateway, merchant: Merchant) -> None:
    response = await gateway.create_payment(merchant.api_key, description="x" * 70_000)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "change",
    [
        {"description": f"card {PAN}"},
        {"metadata": {"note": "4111 1111 1111 1111"}},
        {"metadata": {PAN: "in a key"}},
        {"orderId": PAN},
        {"methodToken": PAN},
        {"amount": int(PAN)},
        {"extra": {"deep": [PAN]}},
    ],
)
async def test_a_card_number_anywhere_in_the_body_is_refused_and_never_echoed(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, change: dict
) -> None:
    response = await gateway.create_payment(merchant.api_key, **change)
    assert response.status_code == 400
    assert response.json()["code"] == "raw_card_data_forbidden"
    assert PAN not in response.text and "4111 1111" not in response.text
    count = db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert count.fetchone() == (0,)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_card_number_in_any_shape_in_any_field_is_refused_and_nothing_is_stored(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, shape: str
) -> None:
    changes = [
        {"description": f"paid with {shape} today"},
        {"metadata": {"note": shape}},
        {"metadata": {shape[:40]: "in a key"}},
        {"orderId": shape},
        {"methodToken": shape},
    ]
    for change in changes:
        response = await gateway.create_payment(merchant.api_key, **change)
        assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
        assert not holds_pan(response.text)
    count = db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert count.fetchone() == (0,)


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_card_number_in_any_shape_in_the_query_or_idempotency_key_is_refused(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, shape: str
) -> None:
    listed = await gateway.client.get(
        "/payments", params={"orderId": shape}, headers=gateway.headers(merchant.api_key)
    )
    keyed = await gateway.client.post(
        "/payments",
        json={"orderId": "o-1", "amount": 1999, "currency": "EUR", "methodToken": "tok_visa"},
        headers={**gateway.headers(merchant.api_key), "Idempotency-Key": f"retry-{shape}".encode()},
    )
    for response in (listed, keyed):
        assert (response.status_code, response.json()["code"]) == (400, "raw_card_data_forbidden")
        assert not holds_pan(response.text) and not holds_pan(str(response.headers))
    count = db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert count.fetchone() == (0,)


async def test_ids_keys_and_times_that_merely_hold_digits_are_accepted(
    gateway: Gateway, merchant: Merchant
) -> None:
    created = await gateway.create_payment(
        merchant.api_key,
        key=uuid.uuid4().hex,
        orderId="order-2026-11-29-000123",
        description="ordered 2026-11-29 12:30:45, shipped 30.11.2026 09:15:00",
        metadata={"cart": uuid.uuid4().hex, "session": str(uuid.uuid4()), "at": "1732440000000"},
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("depth", [33, 200, 1000, 1025, 30_000])
async def test_a_body_nested_deeper_than_32_levels_is_400_however_deep(
    gateway: Gateway, merchant: Merchant, depth: int
) -> None:
    headers = {**gateway.headers(merchant.api_key, "k"), "Content-Type": "application/json"}
    for nested in (
        b"[" * depth + b"]" * depth,
        b'{"metadata": ' + b"[" * depth + b"]" * depth + b"}",
    ):
        response = await gateway.client.post("/payments", content=nested, headers=headers)
        problem = response.json()
        assert (response.status_code, problem["code"]) == (400, "validation_error")
        assert problem["detail"] == "the body nests deeper than 32 levels"


async def test_a_body_nested_32_levels_deep_is_read_and_then_validated(
    gateway: Gateway, merchant: Merchant
) -> None:
    nested: object = "x"
    for _ in range(30):  # in the body and its metadata: 32 levels
        nested = [nested]
    response = await gateway.create_payment(merchant.api_key, metadata={"deep": nested})
    problem = response.json()
    assert (response.status_code, problem["detail"]) == (400, "the request has invalid fields")
    assert problem["errors"][0]["pointer"] == "/metadata/deep"


async def test_a_nul_character_anywhere_is_400_and_nothing_is_stored(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    headers = gateway.headers(merchant.api_key)
    in_body = await gateway.create_payment(merchant.api_key, metadata={"note": "a\x00b"})
    in_query = await gateway.client.get("/audit?actor=%0A%00", headers=headers)
    in_path = await gateway.client.get("/payments/pay_%00/events", headers=headers)
    for response in (in_body, in_query, in_path):
        assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert in_body.json()["errors"] == [
        {"pointer": "/metadata/note", "detail": "contains a NUL character"}
    ]
    count = db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert count.fetchone() == (0,)


async def test_a_query_with_characters_beyond_latin_1_is_read_not_a_500(
    gateway: Gateway, merchant: Merchant
) -> None:
    response = await gateway.client.get(
        "/payments",
        params={"startingAfter": "\U0001b244"},
        headers=gateway.headers(merchant.api_key),
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    listed = await gateway.client.get(
        "/ledger/entries",
        params={"paymentId": "pay_\u00e9\U0001b244"},
        headers=gateway.headers(merchant.api_key),
    )
    assert listed.status_code == 200 and listed.json()["data"] == []


async def test_lists_page_newest_first_with_a_cursor(gateway: Gateway, merchant: Merchant) -> None:
    created = [
        (await gateway.create_payment(merchant.api_key)).json()["paymentId"] for _ in range(5)
    ]
    headers = gateway.headers(merchant.api_key)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"startingAfter": cursor} if cursor else {})}
        page = (await gateway.client.get("/payments", params=params, headers=headers)).json()
        seen += [p["paymentId"] for p in page["data"]]
        pages += 1
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            break
        cursor = page["nextCursor"]
    assert seen == list(reversed(created)) and pages == 3


async def test_lists_filter_by_order_and_status(gateway: Gateway, merchant: Merchant) -> None:
    order = f"order-{uuid.uuid4().hex}"
    await gateway.create_payment(merchant.api_key, orderId=order)
    await gateway.create_payment(merchant.api_key)
    headers = gateway.headers(merchant.api_key)
    by_order = (
        await gateway.client.get("/payments", params={"orderId": order}, headers=headers)
    ).json()
    pending = (
        await gateway.client.get("/payments", params={"status": "PENDING"}, headers=headers)
    ).json()
    captured = (
        await gateway.client.get("/payments", params={"status": "CAPTURED"}, headers=headers)
    ).json()
    assert [p["orderId"] for p in by_order["data"]] == [order]
    assert len(pending["data"]) == 2 and captured["data"] == []


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "101"}, {"status": "DONE"}, {"color": "red"}]
)
async def test_bad_list_parameters_are_400(
    gateway: Gateway, merchant: Merchant, params: dict
) -> None:
    response = await gateway.client.get(
        "/payments", params=params, headers=gateway.headers(merchant.api_key)
    )
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


async def test_unknown_routes_and_methods_answer_problems(gateway: Gateway) -> None:
    missing = await gateway.client.get("/nothing-here")
    wrong = await gateway.client.delete("/payments")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


async def test_the_openapi_document_and_health_endpoints_are_served(gateway: Gateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    assert {"/payments", "/payments/{paymentId}", "/payments/{paymentId}/events"} <= set(
        document["paths"]
    )
    assert (await gateway.client.get("/healthz")).json()["status"] == "ok"
    ready = (await gateway.client.get("/readyz")).json()
    assert ready == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "psp": "ok"}}


async def test_readiness_is_degraded_while_the_psp_circuit_is_open(
    gateway_config: GatewayConfig, redis_client: redis.Redis
) -> None:
    redis_client.set(open_key("simulator"), "1", px=5000)
    async with running_gateway(gateway_config, connectors=simulators("simulator")) as gateway:
        ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["checks"]["psp"] == "circuit_open"


async def test_a_query_parameter_given_twice_is_400_naming_it(
    gateway: Gateway, merchant: Merchant
) -> None:
    response = await gateway.client.get(
        "/payments?limit=5&limit=50&status=FAILED", headers=gateway.headers(merchant.api_key)
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert response.json()["errors"] == [{"pointer": "/limit", "detail": "given more than once"}]
