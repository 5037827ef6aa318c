"""Abuse limits (OWASP API4 and API6): requests per key per second, and the
card-testing guard on new payments. Both live in Redis and let everything
through when Redis is away: they protect capacity, not correctness."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.problems import Problem
from payments.card_testing import CardTestingPolicy
from payments.card_testing import bucket_keys
from payments.card_testing import looks_like_card_testing


class Limits:
    def __init__(self, redis: Redis, *, per_second: int, card_testing: CardTestingPolicy) -> None:
        self._redis = redis
        self._per_second = per_second
        self._card_testing = card_testing

    def check_rate(self, count: int) -> None:
        """429 past the key's requests per second (0: no limit), given its
        count in this second (`gateway.principals` counts, in the request's
        one Redis round trip before its work)."""
        if self._per_second and count > self._per_second:
            now = time.time()
            retry_after = max(1, int(1 - (now % 1) + 0.999))
            raise Problem(
                "rate_limited",
                f"more than {self._per_second} requests in a second with this key",
                headers={"Retry-After": str(retry_after)},
            )

    async def guard_new_payment(self, key_id: str) -> None:
        """429 while the key's recent authorizations look like card testing."""
        policy = self._card_testing
        current, previous = bucket_keys(key_id, time.time(), policy.window)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hmget(current, "total", "declined")
            pipe.hmget(previous, "total", "declined")
            buckets = await pipe.execute()
        except RedisError:
            return
        total = sum(int(bucket[0] or 0) for bucket in buckets)
        declined = sum(int(bucket[1] or 0) for bucket in buckets)
        if looks_like_card_testing(total, declined, policy):
            raise Problem(
                "card_testing_suspected",
                f"{declined} of this key's last {total} authorizations were declined;"
                " new payments are paused",
                headers={"Retry-After": str(policy.window)},
            )
