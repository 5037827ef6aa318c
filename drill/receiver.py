"""A merchant's webhook endpoint for drills and tests: it verifies every
delivery with the official standardwebhooks library, records it, and can
fail the first tries of each event (or answer 410) on purpose."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stack.ports import wait_until
from stack.threaded import serving_in_thread


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Receiver:
    # Where deliveries go; set by serving_receiver once its server answers.
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

    def received(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, count: int, timeout: float = 20) -> list[Delivery]:
        """The deliveries, once there are at least `count`."""
        return wait_until(
            self.received,
            holds=lambda deliveries: len(deliveries) >= count,
            timeout=timeout,
            what=f"{count} deliveries",
        )

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
    receiver = Receiver(url="")

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
    with serving_in_thread(app, ready_path="/ready", tls=tls) as url:
        receiver.url = f"{url}/hooks"
        yield receiver
