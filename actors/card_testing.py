"""Counting authorization outcomes per API key for the card-testing guard
(`payments.card_testing`); the gateway reads the counts."""

from __future__ import annotations

import time

import redis

from payments.card_testing import CardTestingPolicy
from payments.card_testing import bucket_keys


class CardTestingCounter:
    def __init__(self, client: redis.Redis, policy: CardTestingPolicy) -> None:
        self._redis = client
        self._policy = policy

    def record(self, key_id: str, declined: bool) -> None:
        current, _ = bucket_keys(key_id, time.time(), self._policy.window)
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(current, "total", 1)
            if declined:
                pipe.hincrby(current, "declined", 1)
            pipe.expire(current, 2 * self._policy.window)
            pipe.execute()
        except redis.RedisError:
            pass  # a guard, not the books: losing a count is harmless
