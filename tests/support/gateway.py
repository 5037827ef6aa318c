"""The gateway application in-process, on the session's real Postgres and Redis,
with the worker queue replaced by a recorder."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

import httpx
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.types import GatewayConfig
from gateway.types import Services
from psp.breaker import breaker_states
from psp.protocol import Connectors
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from psp.standard_webhooks import WebhookSecret


@dataclass
class RecordingWorkQueue:
    nudged: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    reconciliations: list[str] = field(default_factory=list)
    authentications: list[str] = field(default_factory=list)

    async def nudge_operation(self, operation_id: str) -> None:
        self.nudged.append(operation_id)

    async def nudge_webhook(self, inbox_id: str) -> None:
        self.webhooks.append(inbox_id)

    async def nudge_reconciliation(self, run_id: str) -> None:
        self.reconciliations.append(run_id)

    async def nudge_authentication(self, payment_id: str) -> None:
        self.authentications.append(payment_id)

    async def depths(self) -> dict[tuple[str, str], int]:
        return {("payments", "ready"): len(self.nudged)}


@dataclass
class Gateway:
    client: httpx.AsyncClient
    work: RecordingWorkQueue
    config: GatewayConfig
    services: Services

    def headers(self, api_key: str, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def create_payment(
        self, api_key: str, key: str | None = None, **fields: Any
    ) -> httpx.Response:
        body = {
            "orderId": f"order-{uuid.uuid4().hex[:12]}",
            "amount": 1999,
            "currency": "EUR",
            "methodToken": "tok_visa",
            **fields,
        }
        return await self.client.post(
            "/payments", json=body, headers=self.headers(api_key, key or uuid.uuid4().hex)
        )


def simulators(*names: str, webhook_secrets: tuple[WebhookSecret, ...] = ()) -> Connectors:
    """Simulator connectors under these names, for a gateway that only
    verifies their callbacks and watches their breakers (never calls them)."""
    config = SimulatorClientConfig(
        base_url="http://127.0.0.1:9", api_key="unused", webhook_secrets=webhook_secrets
    )
    return Connectors({name: SimulatorConnector(config, name=name) for name in names})


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig, **overrides: Any) -> AsyncIterator[Gateway]:
    config = replace(config, **overrides)
    work = RecordingWorkQueue()

    def make_work_queue(redis: Redis) -> RecordingWorkQueue:
        return work

    app = create_app(config, make_work_queue, breaker_states)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client, work, config, app.state.services)
