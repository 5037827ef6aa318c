"""`paystream up --psp stripe` as a user runs it: localstripe as the local
Stripe (behind the proxy that keeps Stripe's idempotency keys), the README's
walk-through with Stripe's test PaymentMethods, Stripe's signed webhooks at
`/webhooks/stripe`, and its balance transactions reconciled through the API.
Then `--psp simulator,stripe` with a routing table."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

from stack.ports import wait_until
from tests.support.servers import make_root
from tests.support.stack import RunningStack
from tests.support.stack import remove
from tests.support.stack import start_stack

# localstripe has no pm_card_chargeDeclined; this one declines at both
# (psp/stripe/departures.py).
DECLINED = "pm_card_chargeCustomerFail"


@pytest.fixture(scope="module")
def stripe_stack() -> Iterator[RunningStack]:
    root = make_root("paystream-up-stripe-")
    running = start_stack(root, options=("--psp", "stripe"), env={"STRIPE_API_KEY": ""})
    yield running
    exit_code = running.stop()
    remove(root)
    assert exit_code == 0, "paystream up did not stop cleanly on Ctrl-C"


def create(stack: RunningStack, token: str = "pm_card_visa", **fields: Any) -> dict[str, Any]:
    order = uuid.uuid4().hex
    body = {"orderId": order, "amount": 1999, "currency": "EUR", "methodToken": token, **fields}
    answer = httpx.post(f"{stack.gateway}/payments", json=body, headers=stack.headers(order))
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def post(stack: RunningStack, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.gateway}{path}", json=body, headers=stack.headers(uuid.uuid4().hex)
    )
    assert answer.status_code == status, answer.text
    return answer.json()  # type: ignore[no-any-return]


def settled(stack: RunningStack, payment_id: str, wanted: set[str]) -> dict[str, Any]:
    stack.wait_for_status(payment_id, wanted, timeout=20)
    stack.wait_until_settled(payment_id, timeout=20)
    return stack.payment(payment_id)


def test_stack_json_names_the_local_stripe_in_use(stripe_stack: RunningStack) -> None:
    info = stripe_stack.info
    assert info["psps"] == {"stripe": info["stripeUrl"]}
    assert info["routing"] == {"default": "stripe", "routes": []}
    assert httpx.get(f"{info['stripeUrl']}/_proxy/healthz").json() == {"upstream": "up"}
    banner = (stripe_stack.root / "up.out").read_text()
    assert re.search(r"psp stripe\s+" + re.escape(info["stripeUrl"]), banner)
    assert '"methodToken":"pm_card_visa"' in banner


def test_pm_card_visa_is_captured_with_a_payment_intent_and_stripes_signed_webhook_applied_once(
    stripe_stack: RunningStack,
) -> None:
    payment = create(stripe_stack)
    assert (payment["psp"], payment["status"]) == ("stripe", "PENDING")

    captured = settled(stripe_stack, payment["paymentId"], {"CAPTURED"})
    assert captured["pspReference"].startswith("pi_")
    assert captured["capturedAmount"] == 1999

    def inbox() -> list[tuple[str, str]]:
        with psycopg.connect(stripe_stack.info["databaseUrl"]) as conn:
            rows = conn.execute(
                "SELECT event_type, status FROM webhook_inbox WHERE provider = 'stripe'"
                " AND payload -> 'data' -> 'object' ->> 'id' = %s",
                (captured["pspReference"],),
            ).fetchall()
        return [(str(kind), str(status)) for kind, status in rows]

    # localstripe sends payment_intent.succeeded about a second after the change.
    applied = wait_until(
        inbox,
        holds=lambda rows: rows == [("payment_intent.succeeded", "applied")],
        timeout=20,
        what="Stripe's webhook in the inbox, applied",
    )
    assert applied == [("payment_intent.succeeded", "applied")]
    events = httpx.get(
        f"{stripe_stack.gateway}/payments/{payment['paymentId']}/events",
        headers=stripe_stack.headers(),
    ).json()["data"]
    assert [event["toStatus"] for event in events] == ["PENDING", "CAPTURED"]


def test_a_manual_payment_is_captured_in_part_and_another_canceled(
    stripe_stack: RunningStack,
) -> None:
    partly = create(stripe_stack, amount=5000, captureMethod="manual")
    whole = create(stripe_stack, amount=4000, captureMethod="manual")
    for payment in (partly, whole):
        assert settled(stripe_stack, payment["paymentId"], {"AUTHORIZED"})["authorizedAmount"]

    post(stripe_stack, f"/payments/{partly['paymentId']}/capture", {"amount": 3000}, 202)
    post(stripe_stack, f"/payments/{whole['paymentId']}/cancel", {}, 202)

    captured = settled(stripe_stack, partly["paymentId"], {"CAPTURED"})
    canceled = settled(stripe_stack, whole["paymentId"], {"CANCELED"})
    assert (captured["authorizedAmount"], captured["capturedAmount"]) == (5000, 3000)
    assert canceled["capturedAmount"] == 0


def test_partial_refunds_add_up_and_a_declined_card_fails_with_stripes_code(
    stripe_stack: RunningStack,
) -> None:
    payment = create(stripe_stack)
    declined = create(stripe_stack, token=DECLINED)
    settled(stripe_stack, payment["paymentId"], {"CAPTURED"})

    path = f"/payments/{payment['paymentId']}/refunds"
    refunds = [post(stripe_stack, path, {"amount": amount}, 201) for amount in (500, 700)]
    for refund in refunds:
        wait_until(
            lambda refund=refund: httpx.get(
                f"{stripe_stack.gateway}/refunds/{refund['refundId']}",
                headers=stripe_stack.headers(),
            ).json(),
            holds=lambda found: found["status"] == "SUCCEEDED",
            timeout=20,
            what=f"{refund['refundId']} to succeed",
        )
    refunded = settled(stripe_stack, payment["paymentId"], {"CAPTURED"})
    failed = settled(stripe_stack, declined["paymentId"], {"FAILED"})

    assert refunded["refundedAmount"] == 1200
    assert failed["failureCode"] == "card_declined"


def test_stripes_balance_transactions_reconcile_through_the_api_without_a_break(
    stripe_stack: RunningStack,
) -> None:
    payment = create(stripe_stack)
    settled(stripe_stack, payment["paymentId"], {"CAPTURED"})

    run, breaks = reconcile(stripe_stack, "stripe")

    assert run["status"] == "completed", run
    assert breaks == []
    assert run["counts"]["matched"] >= 1


def test_simulator_and_stripe_side_by_side_route_by_the_table_and_reconcile_apart() -> None:
    root = make_root("paystream-up-two-psps-")
    routing = root / "routing.json"
    table = {"default": "simulator", "routes": [{"psp": "stripe", "minAmount": 10000}]}
    routing.write_text(json.dumps(table))
    try:
        stack = start_stack(
            root,
            options=("--psp", "simulator,stripe", "--routing", str(routing)),
            env={"STRIPE_API_KEY": ""},
        )
        try:
            banner = (stack.root / "up.out").read_text()
            assert re.search(r"routing\s+amount >= 10000\s+-> stripe", banner), banner
            small = create(stack, token="tok_visa", amount=500)
            large = create(stack, amount=25000)
            assert (small["psp"], large["psp"]) == ("simulator", "stripe")
            assert settled(stack, large["paymentId"], {"CAPTURED"})["pspReference"].startswith(
                "pi_"
            )
            assert settled(stack, small["paymentId"], {"CAPTURED"})["psp"] == "simulator"
            runs = {psp: reconcile(stack, psp) for psp in ("simulator", "stripe")}
        finally:
            assert stack.stop() == 0
    finally:
        remove(root)

    # Each PSP's report against its own payments: neither calls the other's missing.
    for psp, (run, breaks) in runs.items():
        assert run["status"] == "completed", (psp, run)
        assert breaks == [], (psp, breaks)


def reconcile(stack: RunningStack, psp: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    today = datetime.now(UTC).date().isoformat()
    started = httpx.post(
        f"{stack.gateway}/reconciliations",
        json={"pspBatch": today, "psp": psp},
        headers=stack.operator_headers(),
    )
    assert started.status_code == 202, started.text
    path = f"{stack.gateway}/reconciliations/{started.json()['reconciliationId']}"
    run = wait_until(
        lambda: httpx.get(path, headers=stack.operator_headers()).json(),
        holds=lambda run: run["status"] in ("completed", "failed"),
        timeout=30,
        what=f"the reconciliation of {psp}",
    )
    breaks = httpx.get(f"{path}/breaks", headers=stack.operator_headers()).json()["data"]
    return run, breaks
