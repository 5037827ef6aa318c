"""localstripe for the test session: a real process (stack.localstripe), a
connector talking to it directly, and one behind the fault-injecting proxy.
A test that needs it and cannot start it fails; it never skips."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from psp.stripe.client import HttpxTransport
from psp.stripe.client import StripeConfig
from psp.stripe.connector import StripeConnector
from stack.localstripe import LOCALSTRIPE_API_KEY
from stack.localstripe import LocalStripe
from stack.ports import free_port
from stack.threaded import serving_in_thread
from tests.support.servers import make_root

# Short, so that a hang is seen as a timeout within a test's patience; long
# enough for localstripe on a busy machine (it answers in milliseconds).
READ_TIMEOUT = 2.0
# Cards whose charge asks for 3-D Secure, at Stripe and at localstripe.
THREE_D_SECURE_CARDS = ("4000002500003155", "4000000000003220")


@pytest.fixture(scope="session", name="localstripe")
def localstripe_fixture() -> Iterator[LocalStripe]:
    root = make_root("paystream-localstripe-")
    server = LocalStripe(port=free_port(), log_path=root / "localstripe.log")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def connector_for(url: str, **overrides: Any) -> StripeConnector:
    config = StripeConfig(
        api_key=LOCALSTRIPE_API_KEY,
        api_base=url,
        read_timeout=READ_TIMEOUT,
        localstripe=True,
        **overrides,
    )
    return StripeConnector(config)


@contextmanager
def stripe_sdk(localstripe: LocalStripe) -> Iterator[stripe.StripeClient]:
    """The SDK pointed at localstripe, for what a test does as Stripe or as
    the customer (3-D Secure), not as paystream."""
    transport = HttpxTransport(timeout=10, allow_sync_methods=True)
    yield stripe.StripeClient(
        LOCALSTRIPE_API_KEY,
        base_addresses={"api": localstripe.url},
        http_client=transport,
        max_network_retries=0,
    )
    transport.close()  # type: ignore[no-untyped-call]


def three_d_secure_method(localstripe: LocalStripe, number: str) -> str:
    """A PaymentMethod made from a 3-D Secure test card, as Stripe.js would
    make it in the customer's browser."""
    card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    with stripe_sdk(localstripe) as sdk:
        return sdk.v1.payment_methods.create({"type": "card", "card": card}).id


def authenticate(localstripe: LocalStripe, intent_id: str, *, success: bool) -> None:
    """What the customer does on the 3-D Secure page: localstripe's own
    endpoint, with the intent's client secret (as Stripe.js holds it)."""
    with stripe_sdk(localstripe) as sdk:
        intent = sdk.v1.payment_intents.retrieve(intent_id)
    httpx.post(
        f"{localstripe.url}/v1/payment_intents/{intent_id}/_authenticate",
        data={"client_secret": intent.client_secret, "success": str(success).lower()},
        headers={"Authorization": f"Bearer {LOCALSTRIPE_API_KEY}"},
    ).raise_for_status()


@contextmanager
def receiving_webhooks(
    path: str = "/hook",
) -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """An endpoint at `path` that keeps every request it gets (body and
    headers): its URL and the list."""
    received: list[tuple[bytes, dict[str, str]]] = []

    async def keep(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        return Response(status_code=200)

    app = Starlette(routes=[Route(path, keep, methods=["POST"]), Route("/healthz", healthz)])
    with serving_in_thread(app, ready_path="/healthz") as url:
        yield f"{url}{path}", received
