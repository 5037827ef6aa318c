"""The simulator's callbacks: one signed webhook for every outcome it books,
sent the Standard Webhooks way and retried until acknowledged, as a real PSP
does (at least once, in no promised order). Knobs delay, duplicate and
reorder them."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import ssl
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

logger = logging.getLogger("paystream.psp_simulator.webhooks")

# A PSP keeps trying for a long while (Stripe: days); this one for about ten
# minutes, enough to outlast a gateway restart in a drill.
RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30, 60, 120, 180, 240)
# Callbacks on the wire at once. The rest wait their turn here: left to queue
# in the HTTP client's pool, thousands of them cost a scan each per request.
IN_FLIGHT = 32


@dataclass
class WebhookKnobs:
    url: str | None = None
    secret: str | None = None
    delay_ms: int = 0
    # Share of callbacks sent twice, with the same webhook-id.
    duplicate_rate: float = 0.0
    # Share of callbacks held back long enough to arrive after later ones.
    reorder_rate: float = 0.0

    def validate(self) -> None:
        for name in ("duplicate_rate", "reorder_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay_ms < 0:
            raise ValueError("delay_ms must not be negative")


class WebhookSender:
    def __init__(
        self, knobs: WebhookKnobs, seed: int | None = None, ca_file: str | None = None
    ) -> None:
        self.knobs = knobs
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self._random = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)
        self.sent = 0
        self.duplicated = 0
        self.reordered = 0

    def reseed(self, seed: int | None) -> None:
        self._random = random.Random(seed)

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue the callback for an outcome just booked."""
        if not self.knobs.url or not self.knobs.secret:
            return
        message_id = "msg_" + secrets.token_hex(12)
        body = orjson.dumps(
            {
                "id": message_id,
                "type": event_type,
                "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "data": data,
            }
        ).decode()
        delay = self.knobs.delay_ms / 1000
        if self._random.random() < self.knobs.reorder_rate:
            # Late enough to land behind the callbacks of the next operations.
            delay += 0.3 + self._random.uniform(0, 1.0 + 2 * delay)
            self.reordered += 1
        self._spawn(self._deliver(message_id, body, delay))
        if self._random.random() < self.knobs.duplicate_rate:
            self.duplicated += 1
            self._spawn(self._deliver(message_id, body, delay + self._random.uniform(0, 0.5)))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message_id: str, body: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for retry_delay in (*RETRY_DELAYS, None):
            url, secret = self.knobs.url, self.knobs.secret
            if url and secret and await self._post(url, secret, message_id, body):
                self.sent += 1
                return
            if retry_delay is None:
                logger.warning(
                    "webhook %s given up after %d tries", message_id, len(RETRY_DELAYS) + 1
                )
                return
            await asyncio.sleep(retry_delay)

    async def _post(self, url: str, secret: str, message_id: str, body: str) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(5.0),
                verify=self._verify,
                limits=httpx.Limits(max_connections=IN_FLIGHT),
            )
        async with self._in_flight:
            return await self._send(self._client, url, secret, message_id, body)

    async def _send(
        self, client: httpx.AsyncClient, url: str, secret: str, message_id: str, body: str
    ) -> bool:
        now = datetime.now(UTC)
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, body),
            "content-type": "application/json",
        }
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 300

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
