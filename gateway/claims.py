"""Claims on Redis keys in one round trip: `SET NX PX`, or who holds the key.

The fast path of idempotency keys and of PSP webhook dedup. Redis is never
the truth: when it is unreachable a claim succeeds (the caller falls back on
Postgres's unique constraints), and the trouble is logged once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("paystream.gateway.claims")

_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Claims:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._last_warning = 0.0

    async def claim(self, key: str, value: bytes, ttl_ms: int) -> bytes | None:
        """None when the key is now ours (or Redis is away); else its value."""
        try:
            held = await self._claim(keys=[key], args=[value, ttl_ms])
        except RedisError as error:
            self._redis_failed(error)
            return None
        return held if isinstance(held, bytes) else None

    async def release(self, key: str, value: bytes) -> None:
        """Give a claim back, if it is still ours."""
        await self._quietly(self._release(keys=[key], args=[value]))

    async def settle(self, key: str, value: bytes, ttl_ms: int) -> None:
        """Replace the claim with what it led to, kept `ttl_ms`."""
        await self._quietly(self._redis.set(key, value, px=ttl_ms))

    async def _quietly(self, call: Awaitable[Any]) -> None:
        try:
            await call
        except RedisError as error:
            self._redis_failed(error)

    def _redis_failed(self, error: RedisError) -> None:
        now = time.monotonic()
        if now - self._last_warning > 60:
            self._last_warning = now
            logger.warning("Redis unavailable; falling back on Postgres: %s", error)
