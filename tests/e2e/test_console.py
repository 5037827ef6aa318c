"""The operator console in a real browser: headless Chromium (Debian's, driven
by Playwright) on a running `paystream up`. An operator signs in with the
stack's key, finds a payment by its order id, reads its timeline, and replays
a dead-lettered webhook delivery until it is delivered."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser
from playwright.sync_api import ConsoleMessage
from playwright.sync_api import Page
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright

from drill.receiver import Receiver
from drill.receiver import serving_receiver
from stack.ports import wait_until
from tests.support.stack import RunningStack

pytestmark = pytest.mark.system_packages("chromium")

SIGN_IN = re.compile(r"/console/sign-in")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "chromium is not installed, and the console's browser test needs it:"
            " apt-get install chromium (Debian; the suite installs it as root)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


def create_payment(stack: RunningStack, order_id: str) -> str:
    body = {"orderId": order_id, "amount": 4200, "currency": "EUR", "methodToken": "tok_visa"}
    response = httpx.post(
        f"{stack.gateway}/payments", json=body, headers=stack.headers(uuid.uuid4().hex)
    )
    assert response.status_code == 201, response.text
    return str(response.json()["paymentId"])


def register_endpoint(stack: RunningStack, receiver: Receiver) -> str:
    response = httpx.post(
        f"{stack.gateway}/webhook-endpoints",
        json={"url": receiver.url, "eventTypes": ["payment.created"]},
        headers=stack.headers(),
    )
    response.raise_for_status()
    receiver.secret = response.json()["secret"]
    return str(response.json()["endpointId"])


def dead_letter(stack: RunningStack, endpoint_id: str, timeout: float = 30) -> dict[str, Any]:
    dead: list[dict[str, Any]] = wait_until(
        lambda: httpx.get(
            f"{stack.gateway}/webhook-deliveries",
            params={"status": "dead", "endpointId": endpoint_id},
            headers=stack.headers(),
        ).json()["data"],
        timeout=timeout,
        what=f"a dead letter for {endpoint_id}",
        interval=0.2,
    )
    assert dead, f"no dead letter for {endpoint_id} after {timeout} s"
    return dead[0]


def reload_until(page: Page, selector: str, text: str, timeout: float = 30) -> None:
    """The page says so only on a reload: the browser asks again, as an operator would."""

    def shown() -> str:
        seen = page.locator(selector).inner_text()
        if seen != text:
            page.reload()
        return seen

    wait_until(
        shown,
        holds=lambda seen: seen == text,
        timeout=timeout,
        what=f"{selector} to read {text!r}",
        interval=0.5,
    )
    expect(page.locator(selector)).to_have_text(text)


def test_an_operator_finds_a_payment_reads_its_timeline_and_replays_a_dead_letter(
    short_retries_stack: RunningStack, browser: Browser
) -> None:
    stack, console = short_retries_stack, f"{short_retries_stack.gateway}/console"
    page = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP violation, a script error, a failed request
            problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    with serving_receiver() as receiver:
        receiver.fail_first = 1_000_000  # every try fails, until the operator's replay
        endpoint_id = register_endpoint(stack, receiver)

        # Given an operator sent to sign in, who signs in with the key.
        page.goto(f"{console}/")
        expect(page).to_have_url(SIGN_IN)
        page.fill("#api_key", stack.info["apiKey"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("h1")).to_have_text("Dashboard")
        # The dashboard's script ran under the CSP: it fetched the stats and drew.
        expect(page.locator("#throughput-chart svg")).to_have_count(1)
        expect(page.locator("#total-created")).to_have_text(re.compile(r"^\d+$"))

        # When a payment is made through the API, the console finds it by order id.
        order_id = f"console-{uuid.uuid4().hex[:12]}"
        payment_id = create_payment(stack, order_id)
        assert stack.wait_for_status(payment_id, {"CAPTURED"})["status"] == "CAPTURED"
        page.get_by_role("link", name="Payments", exact=True).click()
        page.fill("input[name=order_id]", order_id)
        page.get_by_role("button", name="Search").click()
        found = page.locator(f'tr[data-payment-id="{payment_id}"]')
        expect(found).to_have_count(1)
        expect(page.locator("#payments tbody tr")).to_have_count(1)

        # Its timeline shows every event with its source.
        found.get_by_role("link", name=payment_id).click()
        expect(page.locator("#payment-status")).to_have_text("CAPTURED")
        created = page.locator('#timeline tr[data-event-type="payment.created"] .source')
        expect(created).to_have_text("api")
        expect(page.locator('#timeline tr[data-event-type="payment.captured"]')).to_have_count(1)

        # The endpoint failed every try: the delivery is a dead letter.
        delivery_id = dead_letter(stack, endpoint_id)["deliveryId"]
        page.get_by_role("link", name="Webhooks", exact=True).click()
        row = f'tr[data-delivery-id="{delivery_id}"]'
        expect(page.locator(f"{row} .delivery-status")).to_have_text("dead")

        # Then, with the endpoint fixed, a replay from the console delivers it.
        with receiver.lock:
            receiver.fail_first = 0
        page.locator(row).get_by_role("button", name="Replay").click()
        expect(page.locator(".flash")).to_contain_text(delivery_id)
        reload_until(page, f"{row} .delivery-status", "delivered")
        assert len(receiver.verified_event_ids()) == 1

        # Signing out ends the session: the console asks to sign in again.
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(SIGN_IN)
        page.goto(f"{console}/payments")
        expect(page).to_have_url(SIGN_IN)
    assert problems == []
