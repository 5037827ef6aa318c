"""The operator console over the real HTTP layer, on real Postgres and Redis:
sign-in and its sessions, roles, tenant isolation, CSRF, and the pages."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from datetime import timedelta

import httpx
import psycopg
import pytest
import redis

from gateway.app import openapi_document
from gateway.console.pages import PAGE_SIZE
from gateway.console.webhooks import PAGE_SIZE as WEBHOOK_PAGE_SIZE
from payments.ids import new_id
from store.keys import Owner
from store.keys import revoke_key
from tests.conftest import Merchant
from tests.conftest import Operator
from tests.conftest import new_merchant
from tests.support.gateway import Gateway

pytestmark = pytest.mark.anyio

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(gateway: Gateway, api_key: str, next_page: str = "") -> httpx.Response:
    form = await gateway.client.get("/console/sign-in")
    assert form.status_code == 200
    return await gateway.client.post(
        "/console/sign-in", data={"csrf": csrf_of(form), "api_key": api_key, "next": next_page}
    )


def session_key(response: httpx.Response) -> str:
    token = response.cookies["paystream_console"]
    return "console:session:" + hashlib.sha256(token.encode()).hexdigest()


def key_id_of(db: psycopg.Connection, merchant: Merchant) -> str:
    row = db.execute("SELECT id FROM api_keys WHERE merchant_id = %s", (merchant.id,)).fetchone()
    assert row is not None
    return str(row[0])


def dead_delivery(db: psycopg.Connection, merchant: Merchant) -> str:
    endpoint_id, delivery_id = new_id("we"), new_id("wd")
    db.execute(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, event_types, secret)"
        " VALUES (%s, %s, 'https://shop.example/hooks', ARRAY['*'], 'whsec_x')",
        (endpoint_id, merchant.id),
    )
    db.execute(
        "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, event_id, event_type,"
        " payload, status, attempts) VALUES (%s, %s, %s, 'evt_x', 'payment.created',"
        " '{\"data\": {}}', 'dead', 10)",
        (delivery_id, endpoint_id, merchant.id),
    )
    return delivery_id


def delivery_status(db: psycopg.Connection, delivery_id: str) -> str:
    row = db.execute(
        "SELECT status FROM webhook_deliveries WHERE id = %s", (delivery_id,)
    ).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_read_key_signs_in_and_the_browser_keeps_only_an_http_only_session_token(
    gateway: Gateway, merchant: Merchant, redis_client: redis.Redis
) -> None:
    signed_in = await sign_in(gateway, merchant.api_key)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/console/")
    cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith("paystream_console=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert merchant.api_key not in cookie
    stored = redis_client.get(session_key(signed_in))
    assert stored is not None and merchant.api_key.encode() not in stored
    assert 7 * 3600 < redis_client.ttl(session_key(signed_in)) <= 8 * 3600
    page = await gateway.client.get("/console/payments")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert merchant.id in page.text


async def test_an_unknown_key_is_refused_and_opens_no_session(
    gateway: Gateway, redis_client: redis.Redis
) -> None:
    refused = await sign_in(gateway, "sk_" + "x" * 43)
    assert refused.status_code == 401 and "unknown or revoked" in refused.text
    assert "paystream_console" not in refused.cookies
    assert redis_client.keys("console:session:*") == []
    page = await gateway.client.get("/console/payments?status=CAPTURED")
    assert page.status_code == 303
    assert (
        page.headers["location"]
        == "/console/sign-in?next=%2Fconsole%2Fpayments%3Fstatus%3DCAPTURED"
    )


async def test_a_key_without_the_read_role_cannot_sign_in(
    gateway: Gateway, database_url: str, redis_client: redis.Redis
) -> None:
    writer = new_merchant(database_url, roles=["payments:write"])
    refused = await sign_in(gateway, writer.api_key)
    assert refused.status_code == 403 and "payments:read" in refused.text
    assert redis_client.keys("console:session:*") == []


async def test_a_sign_in_form_without_its_own_token_is_refused(
    gateway: Gateway, merchant: Merchant
) -> None:
    refused = await gateway.client.post(
        "/console/sign-in", data={"csrf": "forged", "api_key": merchant.api_key}
    )
    assert refused.status_code == 403 and "paystream_console" not in refused.cookies


async def test_after_sign_in_the_operator_goes_back_to_a_console_page_and_never_elsewhere(
    gateway: Gateway, merchant: Merchant
) -> None:
    back = await sign_in(gateway, merchant.api_key, "/console/ledger")
    assert back.headers["location"] == "/console/ledger"
    for elsewhere in ("https://evil.example/", "//evil.example/console/", "/consolex"):
        gateway.client.cookies.clear()
        assert (await sign_in(gateway, merchant.api_key, elsewhere)).headers[
            "location"
        ] == "/console/"


async def test_a_revoked_key_loses_its_session_at_once(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection, redis_client: redis.Redis
) -> None:
    signed_in = await sign_in(gateway, merchant.api_key)
    assert (await gateway.client.get("/console/payments")).status_code == 200
    revoke_key(db, Owner.merchant(merchant.id), key_id_of(db, merchant))
    after = await gateway.client.get("/console/payments")
    assert after.status_code == 303 and after.headers["location"].startswith("/console/sign-in")
    assert redis_client.get(session_key(signed_in)) is None
    assert (await gateway.client.get("/console/api/stats")).status_code == 401


async def test_signing_out_ends_the_session(
    gateway: Gateway, merchant: Merchant, redis_client: redis.Redis
) -> None:
    signed_in = await sign_in(gateway, merchant.api_key)
    dashboard = await gateway.client.get("/console/")
    signed_out = await gateway.client.post("/console/sign-out", data={"csrf": csrf_of(dashboard)})
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/console/sign-in")
    assert redis_client.get(session_key(signed_in)) is None
    assert (await gateway.client.get("/console/")).status_code == 303


async def test_another_merchants_payment_is_a_404_page_and_never_found(
    gateway: Gateway, merchant: Merchant, database_url: str
) -> None:
    other = new_merchant(database_url)
    theirs = (await gateway.create_payment(other.api_key, orderId="their-order")).json()
    mine = (await gateway.create_payment(merchant.api_key)).json()
    await sign_in(gateway, merchant.api_key)
    hidden = await gateway.client.get(f"/console/payments/{theirs['paymentId']}")
    assert hidden.status_code == 404 and "their-order" not in hidden.text
    assert (await gateway.client.get(f"/console/payments/{mine['paymentId']}")).status_code == 200
    search = await gateway.client.get("/console/payments", params={"order_id": "their-order"})
    assert theirs["paymentId"] not in search.text and "No payment matches" in search.text


async def test_payments_are_found_by_order_id_and_show_their_timeline(
    gateway: Gateway, merchant: Merchant
) -> None:
    wanted = (await gateway.create_payment(merchant.api_key, orderId="order-wanted")).json()
    other = (await gateway.create_payment(merchant.api_key, orderId="order-other")).json()
    await sign_in(gateway, merchant.api_key)
    found = await gateway.client.get("/console/payments", params={"order_id": "order-wanted"})
    assert f'data-payment-id="{wanted["paymentId"]}"' in found.text
    assert other["paymentId"] not in found.text
    detail = await gateway.client.get(f"/console/payments/{wanted['paymentId']}")
    assert 'data-event-type="payment.created"' in detail.text
    assert '<td class="source">api</td>' in detail.text and "19.99 EUR" in detail.text


async def test_the_payments_list_and_a_payments_page_name_the_psp_that_took_it(
    gateway: Gateway, merchant: Merchant
) -> None:
    payment = (await gateway.create_payment(merchant.api_key, orderId="order-psp")).json()
    await sign_in(gateway, merchant.api_key)
    listed = await gateway.client.get("/console/payments", params={"order_id": "order-psp"})
    detail = await gateway.client.get(f"/console/payments/{payment['paymentId']}")
    assert payment["psp"] == "simulator"
    assert '<td class="psp">simulator</td>' in listed.text
    assert '<dd id="payment-psp">simulator</dd>' in detail.text


async def test_a_payment_waiting_for_its_customer_is_found_by_status_and_shows_the_page(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    payment = (await gateway.create_payment(merchant.api_key)).json()
    db.execute(
        "UPDATE payments SET status = 'REQUIRES_ACTION', psp_reference = 'psp_1',"
        " next_action_url = 'https://psp.example/challenge/psp_1',"
        " action_expires_at = now() + interval '15 minutes' WHERE id = %s",
        (payment["paymentId"],),
    )
    await sign_in(gateway, merchant.api_key)
    listed = await gateway.client.get("/console/payments", params={"status": "REQUIRES_ACTION"})
    detail = await gateway.client.get(f"/console/payments/{payment['paymentId']}")

    assert '<option value="REQUIRES_ACTION" selected>' in listed.text
    assert payment["paymentId"] in listed.text
    assert 'class="status status-requires_action"' in detail.text
    assert '<a href="https://psp.example/challenge/psp_1" rel="noreferrer">' in detail.text


async def test_payments_are_found_by_creation_day_and_status(
    gateway: Gateway, merchant: Merchant
) -> None:
    payment = (await gateway.create_payment(merchant.api_key)).json()
    day = date.fromisoformat(payment["createdAt"][:10])
    await sign_in(gateway, merchant.api_key)

    async def search(**params: str) -> str:
        return (await gateway.client.get("/console/payments", params=params)).text

    assert payment["paymentId"] in await search(created_from=str(day), created_to=str(day))
    assert payment["paymentId"] not in await search(created_from=str(day + timedelta(days=1)))
    assert payment["paymentId"] not in await search(created_to=str(day - timedelta(days=1)))
    assert payment["paymentId"] in await search(status="PENDING")
    assert payment["paymentId"] not in await search(status="CAPTURED")
    assert "is not a date" in await search(created_from="yesterday")


NEXT_PAGE = re.compile(r'<a rel="next" href="([^"]+)"')


async def test_a_list_longer_than_a_page_links_to_the_rest_and_its_last_page_links_nowhere(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    created = [
        (await gateway.create_payment(merchant.api_key, orderId=f"order-{n}")).json()["paymentId"]
        for n in range(PAGE_SIZE + 1)
    ]
    deliveries = [dead_delivery(db, merchant) for _ in range(WEBHOOK_PAGE_SIZE + 1)]
    await sign_in(gateway, merchant.api_key)

    for first_path, ids in (("/console/payments", created), ("/console/webhooks", deliveries)):
        first = await gateway.client.get(first_path)
        link = NEXT_PAGE.search(first.text)
        assert link, first.text
        rest = await gateway.client.get(link.group(1).replace("&amp;", "&"))
        assert link.group(1).endswith(f"starting_after={sorted(ids)[1]}")
        assert sorted(ids)[0] in rest.text and sorted(ids)[0] not in first.text
        assert NEXT_PAGE.search(rest.text) is None


async def test_a_replay_without_the_sessions_csrf_token_is_refused(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    delivery_id = dead_delivery(db, merchant)
    await sign_in(gateway, merchant.api_key)
    path = f"/console/webhooks/deliveries/{delivery_id}/replay"
    for form in ({}, {"csrf": "forged"}):
        refused = await gateway.client.post(path, data=form)
        assert refused.status_code == 403
    assert delivery_status(db, delivery_id) == "dead"


async def test_a_replay_from_the_console_requeues_the_delivery_and_is_audited(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    delivery_id = dead_delivery(db, merchant)
    await sign_in(gateway, merchant.api_key)
    page = await gateway.client.get("/console/webhooks", params={"status": "dead"})
    assert f'data-delivery-id="{delivery_id}"' in page.text and ">Replay</button>" in page.text
    replayed = await gateway.client.post(
        f"/console/webhooks/deliveries/{delivery_id}/replay", data={"csrf": csrf_of(page)}
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"/console/webhooks?replayed={delivery_id}"
    assert delivery_status(db, delivery_id) == "pending"
    audited = db.execute(
        "SELECT actor FROM audit_log WHERE action = 'webhook_delivery.replayed' AND object_id = %s",
        (delivery_id,),
    ).fetchall()
    assert audited == [(key_id_of(db, merchant),)]
    after = await gateway.client.get(replayed.headers["location"])
    assert "queued again" in after.text


async def test_a_replay_needs_the_admin_role_as_in_the_api(
    gateway: Gateway, database_url: str, db: psycopg.Connection
) -> None:
    reader = new_merchant(database_url, roles=["payments:read"])
    delivery_id = dead_delivery(db, reader)
    await sign_in(gateway, reader.api_key)
    page = await gateway.client.get("/console/webhooks")
    assert 'id="deliveries-need-admin"' in page.text and delivery_id not in page.text
    refused = await gateway.client.post(
        f"/console/webhooks/deliveries/{delivery_id}/replay", data={"csrf": csrf_of(page)}
    )
    assert refused.status_code == 403 and "admin" in refused.text
    assert delivery_status(db, delivery_id) == "dead"


async def test_another_merchants_delivery_cannot_be_replayed(
    gateway: Gateway, merchant: Merchant, database_url: str, db: psycopg.Connection
) -> None:
    theirs = dead_delivery(db, new_merchant(database_url))
    await sign_in(gateway, merchant.api_key)
    page = await gateway.client.get("/console/webhooks")
    assert theirs not in page.text
    refused = await gateway.client.post(
        f"/console/webhooks/deliveries/{theirs}/replay", data={"csrf": csrf_of(page)}
    )
    assert refused.status_code == 404 and delivery_status(db, theirs) == "dead"


async def test_each_page_asks_for_the_role_the_api_asks_for_the_same_data(
    gateway: Gateway, database_url: str
) -> None:
    reader = new_merchant(database_url, roles=["payments:read"])
    await sign_in(gateway, reader.api_key)
    for path in ("/console/", "/console/payments", "/console/webhooks"):
        assert (await gateway.client.get(path)).status_code == 200, path
    for path in ("/console/reconciliations", "/console/ledger"):
        refused = await gateway.client.get(path)
        assert refused.status_code == 403 and "reconciliation" in refused.text, path
    assert "ledger:read" in (await gateway.client.get("/console/ledger")).text


async def test_every_page_renders_for_a_key_with_every_role(
    gateway: Gateway, merchant: Merchant, operator: Operator
) -> None:
    payment = (await gateway.create_payment(merchant.api_key)).json()
    run = await gateway.client.post(
        "/reconciliations",
        json={"pspBatch": "2026-11-24"},
        headers=gateway.headers(operator.api_key),
    )
    await sign_in(gateway, merchant.api_key)
    paths = [
        "/console/",
        "/console/payments",
        f"/console/payments/{payment['paymentId']}",
        "/console/webhooks",
        "/console/ledger",
        "/console/static/console.css",
        "/console/static/dashboard.js",
        "/console/static/favicon.svg",
    ]
    for path in paths:
        assert (await gateway.client.get(path)).status_code == 200, path
    assert (await gateway.client.get("/console/nowhere")).status_code == 404
    bare = await gateway.client.get("/console")
    assert bare.headers["location"].endswith("/console/")
    gateway.client.cookies.clear()
    await sign_in(gateway, operator.api_key)
    for path in (
        "/console/reconciliations",
        f"/console/reconciliations/{run.json()['reconciliationId']}",
        "/console/ledger",
        f"/console/ledger?merchant={merchant.id}",
    ):
        assert (await gateway.client.get(path)).status_code == 200, path


async def test_an_operator_session_reads_runs_and_any_ledger_and_no_merchants_pages(
    gateway: Gateway, merchant: Merchant, operator: Operator
) -> None:
    payment = (await gateway.create_payment(merchant.api_key)).json()
    signed_in = await sign_in(gateway, operator.api_key)
    assert signed_in.headers["location"] == "/console/"
    home = await gateway.client.get("/console/")
    assert (home.status_code, home.headers["location"]) == (303, "/console/reconciliations")
    for path in ("/console/payments", f"/console/payments/{payment['paymentId']}"):
        refused = await gateway.client.get(path)
        assert refused.status_code == 403 and "merchant key" in refused.text, path
    assert (await gateway.client.get("/console/api/stats")).status_code == 403
    ledger = await gateway.client.get("/console/ledger", params={"merchant": merchant.id})
    assert ledger.status_code == 200 and merchant.id in ledger.text
    unknown = await gateway.client.get("/console/ledger", params={"merchant": "mer_nobody"})
    assert unknown.status_code == 404


async def test_the_stats_give_the_last_hour_by_minute_with_latency_and_status_mix(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    assert (await gateway.client.get("/console/api/stats")).status_code == 401
    captured = (await gateway.create_payment(merchant.api_key)).json()
    await gateway.create_payment(merchant.api_key)
    db.execute(
        "UPDATE payments SET status = 'CAPTURED', authorized_amount = amount,"
        " captured_amount = amount WHERE id = %s",
        (captured["paymentId"],),
    )
    db.execute(
        "INSERT INTO payment_events (id, payment_id, merchant_id, type, from_status, to_status,"
        " source, created_at) SELECT 'evt_' || md5(random()::text), id, merchant_id,"
        " 'payment.captured', 'PENDING', 'CAPTURED', 'psp', created_at + interval '250 ms'"
        " FROM payments WHERE id = %s",
        (captured["paymentId"],),
    )
    await sign_in(gateway, merchant.api_key)
    stats = (await gateway.client.get("/console/api/stats")).json()
    assert len(stats["minutes"]) == 60 and stats["created"] == 2
    assert stats["statusMix"] == {"CAPTURED": 1, "PENDING": 1}
    busy = [m for m in stats["minutes"] if m["created"]]
    assert [m["p50Ms"] for m in busy] in ([250.0], [250.0, None], [None, 250.0])


def test_the_console_is_not_part_of_the_openapi_document() -> None:
    assert not [path for path in openapi_document()["paths"] if path.startswith("/console")]
