"""A merchant's webhook endpoint for drills and tests: it verifies every
delivery with the official standardwebhooks library, records it, and can
fail the first tries of each event (or answer 410) on purpose."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stack.ports import free_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Receiver:
    url: str
    # Set once the endpoint is registered; deliveries are checked against it.
    secret: str | None = None
    fail_first: int = 0
    gone: bool = False
    # Answer 503 to everything until this time.monotonic() (an endpoint outage).
    down_until: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified_event_ids(self) -> set[str]:
        with self.lock:
            return {d.headers["webhook-id"] for d in self.deliveries if d.verified}

    def unverified(self) -> int:
        with self.lock:
            return sum(not d.verified for d in self.deliveries)

    def wait_for(self, count: int, timeout: float = 20) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            return list(self.deliveries)

    def _verify(self, body: bytes, headers: dict[str, str]) -> bool:
        if self.secret is None:
            return False
        try:
            Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, ValueError):
            return False
        return True


@contextlib.contextmanager
def serving_receiver(tls: tuple[str, str] | None = None) -> Iterator[Receiver]:
    """A receiver on loopback; with `tls` (certificate and key files), over HTTPS."""
    port = free_port()
    scheme = "https" if tls else "http"
    receiver = Receiver(url=f"{scheme}://127.0.0.1:{port}/hooks")

    async def hook(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        event_id = headers.get("webhook-id", "")
        with receiver.lock:
            receiver.tries[event_id] += 1
            if receiver.gone:
                return Response(status_code=410)
            if time.monotonic() < receiver.down_until:
                return Response(status_code=503)
            if receiver.tries[event_id] <= receiver.fail_first:
                return Response(status_code=500)
            receiver.deliveries.append(Delivery(headers, body, receiver._verify(body, headers)))
        return Response(status_code=204)

    async def ready(request: Request) -> Response:
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hooks", hook, methods=["POST"]), Route("/ready", ready)])
    certificate, key = tls or (None, None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            ssl_certfile=certificate,
            ssl_keyfile=key,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            # Up or not is all this asks: the certificate is the test's business.
            httpx.get(f"{scheme}://127.0.0.1:{port}/ready", verify=False)  # noqa: S501
            break
        time.sleep(0.02)
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(10)
