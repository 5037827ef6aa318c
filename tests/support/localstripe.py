"""localstripe for the test session: a real process (stack.localstripe), a
connector talking to it directly, and one behind the fault-injecting proxy.
A test that needs it and cannot start it fails; it never skips."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from psp.stripe.client import HttpxTransport, StripeConfig
from psp.stripe.connector import StripeConnector
from stack.localstripe import LOCALSTRIPE_API_KEY, LocalStripe
from stack.ports import free_port
from stack.threaded import serving_in_thread
from tests.support.servers import make_root

# Short, so that a hang is seen as a timeout within a test's patience; long
# enough for localstripe on a busy machine (it answers in milliseconds).
READ_TIMEOUT = 2.0


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
