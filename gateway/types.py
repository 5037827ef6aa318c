"""The gateway's shared vocabulary: its configuration and what it is wired to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis


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


class WorkQueue(Protocol):
    """Tells the workers that an object needs their attention. A nudge, not
    the state itself: losing one only delays the work until the janitor."""

    async def nudge_operation(self, operation_id: str) -> None: ...


# How the PSP looks from here: `ok`, `circuit_open` or `unknown`.
PspHealth = Callable[[Redis], Awaitable[str]]


@dataclass(slots=True)
class Services:
    config: GatewayConfig
    pool: AsyncConnectionPool[Any]
    redis: Redis
    work: WorkQueue
    psp_health: PspHealth
