"""The gateway's shared vocabulary: its configuration and what it is wired to."""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any
from typing import Protocol

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from gateway.claims import Claims
from gateway.limits import Limits
from gateway.principals import Principals
from payments.card_testing import CardTestingPolicy
from payments.routing import RoutingTable
from psp.protocol import Connectors


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    database_url: str
    redis_url: str
    key_pepper: bytes
    # Stripe keeps keys at least 24 h; the IETF draft leaves it to the server.
    idempotency_retention: timedelta = timedelta(hours=24)
    # Longer than any request can take: a lock that outlives its request only
    # delays a retry, while one that expires early lets two requests in.
    idempotency_lock_ms: int = 60_000
    # Finished answers are cached in Redis this long for fast replays; older
    # replays are answered from Postgres.
    idempotency_cache_ms: int = 3_600_000
    # Redis calls are on the request path; past this, Redis counts as down.
    redis_timeout: float = 0.5
    db_pool_min: int = 2
    db_pool_max: int = 16
    # Payment requests are small; 64 KiB leaves room for metadata.
    max_body_bytes: int = 64 * 1024
    # The PSPs this deployment runs, by name: their callbacks arrive at
    # /webhooks/{name} and are verified by their connector.
    connectors: Connectors = field(default_factory=lambda: Connectors({}))
    # Which PSP takes each new payment; checked against `connectors` at start-up.
    routing: RoutingTable = field(default_factory=lambda: RoutingTable("simulator"))
    # How long Redis remembers a webhook id; Postgres remembers it forever.
    # Stripe retries for 3 days, so a week covers a PSP's retries.
    webhook_dedup_ms: int = 7 * 86_400_000
    # Merchant webhook endpoints may point at private or loopback addresses
    # (local development only: otherwise an SSRF hole).
    webhooks_allow_private: bool = False
    # How long an endpoint's old secret keeps signing after a rotation, unless
    # the rotation asks for another grace period.
    webhook_secret_grace: timedelta = timedelta(hours=24)
    # Requests per second per key (0: no limit); Stripe allows 100.
    rate_limit_per_second: int = 100
    card_testing: CardTestingPolicy = field(default_factory=CardTestingPolicy)
    # Served over TLS: every answer says so (HSTS).
    hsts: bool = False
    # Settlement reports are uploaded whole; a million lines is about 120 MB.
    max_report_bytes: int = 1024 * 1024 * 1024
    # /metrics wants this bearer token when set; open otherwise (keep it on a
    # private network then).
    metrics_token: str | None = None


class WorkQueue(Protocol):
    """Tells the workers that an object needs their attention. A nudge, not
    the state itself: losing one only delays the work until the janitor."""

    async def nudge_operation(self, operation_id: str) -> None: ...

    async def nudge_webhook(self, inbox_id: str) -> None: ...

    async def nudge_reconciliation(self, run_id: str) -> None: ...

    async def nudge_authentication(self, payment_id: str) -> None:
        """Ask the PSP how a customer's authentication ended (a merchant's confirm)."""
        ...

    async def depths(self) -> dict[tuple[str, str], int]:
        """Messages by (queue, state), for the metrics."""
        ...


# How each PSP looks from here, by name: `ok`, `circuit_open` or `unknown`.
PspHealth = Callable[[Redis, Sequence[str]], Awaitable[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class Services:
    """What the gateway is wired to, opened by the app's lifespan."""

    config: GatewayConfig
    pool: AsyncConnectionPool[Any]
    redis: Redis
    work: WorkQueue
    psp_health: PspHealth
    claims: Claims
    limits: Limits
    principals: Principals
