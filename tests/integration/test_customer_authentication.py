"""Customer authentication (3-D Secure) through the whole stack: a payment
created over the API with the simulator's `tok_3ds_required`, authorized by
the worker into REQUIRES_ACTION, the customer's answer given on the
simulator's challenge page, and the outcome learned by each way there is:
the simulator's signed callback through the gateway's ingress and the
webhook actor, a merchant's confirm, the janitor's inquiry; the expiry, on
the PSP's word only; and a callback crossing a confirm, applied once."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import redis

from actors.authentication import check_authentication
from actors.janitor import JanitorPolicy
from actors.janitor import Nudges
from actors.janitor import sweep
from actors.operations import drive_operation
from actors.psp_webhooks import apply_psp_webhook
from actors.runtime import runtime
from gateway.types import GatewayConfig
from payments.webhooks import new_webhook_secret
from psp.standard_webhooks import WebhookSecret
from stack.ports import wait_until
from tests.conftest import Merchant
from tests.support.bank import Bank
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.gateway import simulators
from tests.support.localstripe import receiving_webhooks

pytestmark = pytest.mark.anyio

SECRET = new_webhook_secret()
RETURN_URL = "https://shop.example/orders/back"
# Due at once: every payment waiting for its customer is checked on each sweep.
EAGER = JanitorPolicy(idle=timedelta(0), schedule=[timedelta(seconds=60)])


@dataclass
class Checkout:
    """The gateway (in process), the simulator with the actors on it, and
    the simulator's callbacks as they left it."""

    gateway: Gateway
    bank: Bank
    merchant: Merchant
    callbacks: list[tuple[bytes, dict[str, str]]]

    async def waiting_payment(self, capture_method: str = "automatic") -> dict[str, Any]:
        """A payment the worker took to REQUIRES_ACTION: the API's view of it."""
        created = await self.gateway.create_payment(
            self.merchant.api_key,
            methodToken="tok_3ds_required",
            captureMethod=capture_method,
            returnUrl=RETURN_URL,
        )
        assert created.status_code == 201, created.text
        drive_operation.fn(self.gateway.work.nudged[-1])
        return await self.read(created.json()["paymentId"])

    async def read(self, payment_id: str) -> dict[str, Any]:
        headers = self.gateway.headers(self.merchant.api_key)
        answer = await self.gateway.client.get(f"/payments/{payment_id}", headers=headers)
        return dict(answer.json())

    async def timeline(self, payment_id: str) -> list[tuple[str, str, str]]:
        headers = self.gateway.headers(self.merchant.api_key)
        events = await self.gateway.client.get(f"/payments/{payment_id}/events", headers=headers)
        return [(e["type"], e["toStatus"], e["source"]) for e in events.json()["data"]]

    def authenticate(self, payment: dict[str, Any], outcome: str) -> httpx.Response:
        """What the customer does: open the challenge page, press a button."""
        url = payment["nextAction"]["url"]
        page = httpx.get(url)
        assert (
            page.status_code == 200 and 'value="pass"' in page.text and 'value="fail"' in page.text
        )
        return httpx.post(url, data={"outcome": outcome}, follow_redirects=False)

    async def deliver_callbacks(self, payment_id: str, status: str) -> list[str]:
        """The simulator's callback of `status` for the payment, through the
        gateway's ingress into the inbox; the inbox ids it was stored under."""

        def sent() -> tuple[bytes, dict[str, str]] | None:
            for body, headers in list(self.callbacks):
                if payment_id.encode() in body and f'"payment.{status}"'.encode() in body:
                    return body, headers
            return None

        body, headers = wait_until(sent, timeout=10, what=f"the simulator's payment.{status}")
        before = len(self.gateway.work.webhooks)
        answer = await self.gateway.client.post(
            "/webhooks/simulator", content=body, headers=headers
        )
        assert answer.status_code == 200, answer.text
        return self.gateway.work.webhooks[before:]

    def capture_entries(self, payment_id: str) -> int:
        row = self.bank.db.execute(
            "SELECT count(*) FROM journal_entries WHERE payment_id = %s AND source_type = 'capture'",
            (payment_id,),
        ).fetchone()
        return int(row[0])  # type: ignore[index]


@pytest.fixture
async def checkout(
    gateway_config: GatewayConfig, bank: Bank, merchant: Merchant, redis_client: redis.Redis
) -> AsyncIterator[Checkout]:
    connectors = simulators("simulator", webhook_secrets=(WebhookSecret(SECRET),))
    with receiving_webhooks("/webhooks/simulator") as (url, received):
        bank.knobs(webhookUrl=url, webhookSecret=SECRET)
        async with running_gateway(
            gateway_config, connectors=connectors, webhooks_allow_private=True
        ) as gateway:
            yield Checkout(gateway, bank, merchant, received)


def janitor_checks(payment_id: str) -> list[str]:
    """One janitor sweep; the payments it had asked about, of those given."""
    asked: list[str] = []
    nudges = Nudges(lambda op: None, lambda inbox_id: None, asked.append)
    sweep(runtime().pool, EAGER, nudges)
    return [asked_about for asked_about in asked if asked_about == payment_id]


async def test_the_psp_asking_for_3_d_secure_makes_the_payment_wait_with_its_page(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()

    assert payment["status"] == "REQUIRES_ACTION"
    assert payment["returnUrl"] == RETURN_URL
    assert payment["nextAction"]["type"] == "redirect"
    assert payment["nextAction"]["url"].startswith(checkout.bank.url + "/challenge/psp_")
    assert payment["nextAction"]["expiresAt"] > payment["updatedAt"]
    assert await checkout.timeline(payment["paymentId"]) == [
        ("payment.created", "PENDING", "api"),
        ("payment.requires_action", "REQUIRES_ACTION", "psp"),
    ]
    [charge] = checkout.bank.charges(payment["paymentId"])
    assert (charge["status"], charge["returnUrl"]) == ("requires_action", RETURN_URL)
    # Merchants hear of it: the event, with what the customer must do, goes out.
    [published] = checkout.bank.db.execute(
        "SELECT payload FROM outbox WHERE event_type = 'payment.requires_action'"
        " AND payload->'data'->>'paymentId' = %s",
        (payment["paymentId"],),
    ).fetchall()
    assert published[0]["data"]["nextAction"] == payment["nextAction"]


async def test_a_merchant_subscribes_to_payment_requires_action(checkout: Checkout) -> None:
    registered = await checkout.gateway.client.post(
        "/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "eventTypes": ["payment.requires_action"]},
        headers=checkout.gateway.headers(checkout.merchant.api_key),
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["eventTypes"] == ["payment.requires_action"]


async def test_a_passed_challenge_captures_by_the_simulators_signed_callback(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()
    back = checkout.authenticate(payment, "pass")
    for inbox_id in await checkout.deliver_callbacks(payment["paymentId"], "captured"):
        apply_psp_webhook.fn(inbox_id)

    assert (back.status_code, back.headers["location"]) == (303, RETURN_URL)
    done = await checkout.read(payment["paymentId"])
    assert (done["status"], done["capturedAmount"], done["nextAction"]) == ("CAPTURED", 1999, None)
    assert (await checkout.timeline(payment["paymentId"]))[-1] == (
        "payment.captured",
        "CAPTURED",
        "webhook",
    )
    assert checkout.capture_entries(payment["paymentId"]) == 1


async def test_a_failed_challenge_fails_the_payment_with_the_psps_code_by_callback(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()
    checkout.authenticate(payment, "fail")
    for inbox_id in await checkout.deliver_callbacks(payment["paymentId"], "declined"):
        apply_psp_webhook.fn(inbox_id)

    done = await checkout.read(payment["paymentId"])
    assert (done["status"], done["failureCode"]) == ("FAILED", "authentication_failed")


async def test_a_merchants_confirm_asks_the_psp_and_writes_its_answer(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment(capture_method="manual")
    checkout.authenticate(payment, "pass")
    path = f"/payments/{payment['paymentId']}/confirm"
    headers = checkout.gateway.headers(checkout.merchant.api_key, "confirm-1")
    confirmed = await checkout.gateway.client.post(path, headers=headers)
    replayed = await checkout.gateway.client.post(path, headers=headers)

    assert (confirmed.status_code, confirmed.json()["status"]) == (202, "REQUIRES_ACTION")
    assert replayed.headers["idempotent-replayed"] == "true"
    assert checkout.gateway.work.authentications == [payment["paymentId"]]
    check_authentication.fn(payment["paymentId"], asked_by="api")
    done = await checkout.read(payment["paymentId"])
    assert (done["status"], done["authorizedAmount"]) == ("AUTHORIZED", 1999)
    assert (await checkout.timeline(payment["paymentId"]))[-1] == (
        "payment.authorized",
        "AUTHORIZED",
        "api",
    )


@pytest.mark.parametrize("status", ["PENDING", "CAPTURED", "FAILED"])
async def test_confirm_outside_requires_action_is_409_invalid_state(
    checkout: Checkout, status: str
) -> None:
    created = await checkout.gateway.create_payment(checkout.merchant.api_key)
    payment_id = created.json()["paymentId"]
    checkout.bank.db.execute("UPDATE payments SET status = %s WHERE id = %s", (status, payment_id))
    refused = await checkout.gateway.client.post(
        f"/payments/{payment_id}/confirm",
        headers=checkout.gateway.headers(checkout.merchant.api_key),
    )

    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "invalid_state"
    assert checkout.gateway.work.authentications == []


async def test_the_janitors_inquiry_finds_an_outcome_whose_callback_was_lost(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()
    checkout.bank.knobs(webhookUrl="http://127.0.0.1:9/lost")  # the callback never arrives
    checkout.authenticate(payment, "pass")
    asked = janitor_checks(payment["paymentId"])
    for payment_id in asked:
        check_authentication.fn(payment_id)

    assert asked == [payment["paymentId"]]
    # Decided: the janitor asks no more.
    assert janitor_checks(payment["paymentId"]) == []
    done = await checkout.read(payment["paymentId"])
    assert done["status"] == "CAPTURED"
    assert (await checkout.timeline(payment["paymentId"]))[-1][2] == "janitor"


def expire(db: psycopg.Connection, payment_id: str) -> None:
    db.execute(
        "UPDATE payments SET action_expires_at = now() - interval '1 second',"
        " action_check_at = NULL WHERE id = %s",
        (payment_id,),
    )


async def test_an_expired_authentication_is_cancelled_at_the_psp_then_failed_on_its_word(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()
    expire(checkout.bank.db, payment["paymentId"])
    for payment_id in janitor_checks(payment["paymentId"]):
        check_authentication.fn(payment_id)

    done = await checkout.read(payment["paymentId"])
    assert (done["status"], done["failureCode"]) == ("FAILED", "authentication_expired")
    [charge] = checkout.bank.charges(payment["paymentId"])
    assert charge["status"] == "voided"  # the PSP agrees: nothing will be charged
    # The customer comes back too late: the bank no longer waits for them.
    late = httpx.post(payment["nextAction"]["url"], data={"outcome": "pass"})
    assert late.status_code == 409


async def test_an_expired_authentication_stays_while_the_psp_cannot_be_reached(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()
    expire(checkout.bank.db, payment["paymentId"])
    checkout.bank.knobs(outages=[{"startsIn": 0, "lasts": 60}])
    for payment_id in janitor_checks(payment["paymentId"]):
        check_authentication.fn(payment_id)
    waiting = await checkout.read(payment["paymentId"])
    checkout.bank.knobs(outages=[])

    assert waiting["status"] == "REQUIRES_ACTION"
    [charge] = checkout.bank.charges(payment["paymentId"])
    assert charge["status"] == "requires_action"


async def test_a_callback_crossing_a_confirm_moves_the_payment_once(
    checkout: Checkout,
) -> None:
    payment = await checkout.waiting_payment()
    checkout.authenticate(payment, "pass")
    [inbox_id] = await checkout.deliver_callbacks(payment["paymentId"], "captured")
    start = threading.Barrier(2)

    def racing(apply: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            start.wait()
            apply()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    threads = [
        racing(lambda: apply_psp_webhook.fn(inbox_id)),
        racing(lambda: check_authentication.fn(payment["paymentId"], asked_by="api")),
    ]
    for thread in threads:
        thread.join(timeout=30)

    timeline = await checkout.timeline(payment["paymentId"])
    captured = [event for event in timeline if event[0] == "payment.captured"]
    assert len(captured) == 1 and captured[0][2] in ("webhook", "api")
    assert checkout.capture_entries(payment["paymentId"]) == 1
    assert (await checkout.read(payment["paymentId"]))["status"] == "CAPTURED"
