"""Enqueue Dramatiq messages from async code (the gateway) without blocking
its event loop: the message is built by Dramatiq and pushed with the same Lua
script its Redis broker uses, through an asyncio Redis client."""

from __future__ import annotations

import logging
import time
import uuid
from importlib import resources

from dramatiq import Message
from redis.asyncio import Redis
from redis.exceptions import RedisError

from actors.queues import APPLY_PSP_WEBHOOK
from actors.queues import CHECK_AUTHENTICATION
from actors.queues import DRIVE_OPERATION
from actors.queues import PAYMENTS_QUEUE
from actors.queues import RECONCILE
from actors.queues import WEBHOOKS_QUEUE
from telemetry.message_context import OPTION
from telemetry.message_context import outgoing

logger = logging.getLogger("paystream.dispatch")

_DISPATCH_LUA = (resources.files("dramatiq.brokers") / "redis" / "dispatch.lua").read_text()
# Dramatiq's defaults for these broker arguments (dramatiq/brokers/redis.py).
_NAMESPACE = "dramatiq"
_HEARTBEAT_TIMEOUT_MS = 60_000
_DEAD_MESSAGE_TTL_MS = 86_400_000 * 7
_MAX_UNPACK_SIZE = 4_000
_QUEUES = (PAYMENTS_QUEUE, WEBHOOKS_QUEUE)


class AsyncDispatcher:
    """The gateway's WorkQueue. A lost nudge is not lost work: the janitor
    re-drives anything left PENDING from Postgres."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._dispatch = redis.register_script(_DISPATCH_LUA)
        self._producer_id = str(uuid.uuid4())

    async def nudge_operation(self, operation_id: str) -> None:
        await self._enqueue(PAYMENTS_QUEUE, DRIVE_OPERATION, operation_id)

    async def nudge_webhook(self, inbox_id: str) -> None:
        await self._enqueue(WEBHOOKS_QUEUE, APPLY_PSP_WEBHOOK, inbox_id)

    async def nudge_reconciliation(self, run_id: str) -> None:
        await self._enqueue(PAYMENTS_QUEUE, RECONCILE, run_id)

    async def nudge_authentication(self, payment_id: str) -> None:
        await self._enqueue(PAYMENTS_QUEUE, CHECK_AUTHENTICATION, payment_id, {"asked_by": "api"})

    async def depths(self) -> dict[tuple[str, str], int]:
        """Messages in each queue, in the broker's own keys: ready, delayed
        (a retry waiting for its time) and dead (Dramatiq's dead letters)."""
        pipe = self._redis.pipeline(transaction=False)
        for queue in _QUEUES:
            pipe.llen(f"{_NAMESPACE}:{queue}")
            pipe.hlen(f"{_NAMESPACE}:{queue}.DQ.msgs")
            pipe.hlen(f"{_NAMESPACE}:{queue}.XQ.msgs")
        counts = iter(await pipe.execute())
        return {
            (queue, state): int(next(counts))
            for queue in _QUEUES
            for state in ("ready", "delayed", "dead")
        }

    async def _enqueue(
        self,
        queue_name: str,
        actor_name: str,
        object_id: str,
        kwargs: dict[str, str] | None = None,
    ) -> None:
        redis_message_id = str(uuid.uuid4())
        message: Message[None] = Message(
            queue_name=queue_name,
            actor_name=actor_name,
            args=(object_id,),
            kwargs=kwargs or {},
            options={"redis_message_id": redis_message_id, OPTION: outgoing()},
        )
        try:
            await self._dispatch(
                keys=[_NAMESPACE],
                args=[
                    "enqueue",
                    int(time.time() * 1000),
                    queue_name,
                    self._producer_id,
                    _HEARTBEAT_TIMEOUT_MS,
                    _DEAD_MESSAGE_TTL_MS,
                    0,
                    _MAX_UNPACK_SIZE,
                    redis_message_id,
                    message.encode(),
                ],
            )
        except RedisError as error:
            logger.warning(
                "could not enqueue %s(%s); the janitor will: %s", actor_name, object_id, error
            )
