"""A circuit breaker in front of each PSP, shared by every worker through Redis.

Each worker process counts its own consecutive failed calls to a PSP (no
answer: 5xx, timeout, connection refused). At the threshold it opens that
PSP's breaker for everyone by setting a key with a time to live; while the
key lives, no worker calls that PSP and its payments wait PENDING; the other
PSPs' payments go on. When it expires, calls resume; the first failures open
it again. A Redis outage leaves the breakers closed: the PSPs are then called
as usual.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import redis
from redis.asyncio import Redis as AsyncRedis

from telemetry.metrics import psp_circuit_openings

logger = logging.getLogger("paystream.psp.breaker")


def open_key(psp: str) -> str:
    """The Redis key that, while it lives, holds a PSP's breaker open."""
    return f"psp:{psp}:breaker:open"


class CircuitBreaker:
    def __init__(
        self,
        client: redis.Redis,
        psp: str,
        *,
        # Five calls in a row without an answer is an outage, not bad luck:
        # with 10 % injected errors that happens by chance once in 100,000 calls.
        threshold: int = 5,
        open_seconds: float = 5.0,
        # How stale a worker's view of the shared state may be.
        refresh_seconds: float = 0.25,
    ) -> None:
        self._redis = client
        self.psp = psp
        self._key = open_key(psp)
        self._threshold = threshold
        self._open_ms = int(open_seconds * 1000)
        self._refresh = refresh_seconds
        self._failures = 0
        self._open_until_checked = 0.0
        self._open = False
        self._lock = threading.Lock()

    def allows_call(self) -> bool:
        now = time.monotonic()
        if now >= self._open_until_checked:
            try:
                self._open = bool(self._redis.exists(self._key))
            except redis.RedisError:
                self._open = False
            self._open_until_checked = now + self._refresh
        return not self._open

    def record(self, answered: bool) -> None:
        with self._lock:
            if answered:
                self._failures = 0
                return
            self._failures += 1
            if self._failures < self._threshold:
                return
            self._failures = 0
        logger.warning(
            "PSP %s circuit open for %d ms after %d failed calls",
            self.psp,
            self._open_ms,
            self._threshold,
        )
        try:
            self._redis.set(self._key, "1", px=self._open_ms)
        except redis.RedisError:
            return
        psp_circuit_openings.labels(self.psp).inc()
        self._open, self._open_until_checked = True, time.monotonic() + self._refresh


async def breaker_states(client: AsyncRedis, psps: Sequence[str]) -> dict[str, str]:
    """For readiness, each PSP's: `ok`, `circuit_open`, or `unknown` without Redis."""
    if not psps:
        return {}
    try:
        pipe = client.pipeline(transaction=False)
        for psp in psps:
            pipe.exists(open_key(psp))
        found = await pipe.execute()
    except redis.RedisError:
        return dict.fromkeys(psps, "unknown")
    return {
        psp: "circuit_open" if is_open else "ok" for psp, is_open in zip(psps, found, strict=True)
    }
