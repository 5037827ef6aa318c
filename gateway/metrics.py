"""`GET /metrics`: the Prometheus exposition of every paystream process (see
`telemetry.metrics`), plus what is read at scrape time: the depth of each
Dramatiq queue (Redis) and the outbox's lag (Postgres). Open unless
`PAYSTREAM_METRICS_TOKEN` is set; then it wants `Authorization: Bearer <token>`."""

from __future__ import annotations

import asyncio
import hmac
import logging

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from starlette.responses import Response

from gateway.auth import bearer_token
from gateway.endpoint import Answer, Call
from gateway.problems import Problem
from gateway.types import Services
from store.db import connection
from store.errors import StoreUnavailable
from store.outbox import unpublished_backlog
from telemetry.metrics import exposition

logger = logging.getLogger("paystream.gateway.metrics")

_SCRAPE_TIMEOUT = 2.0


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


async def _queue_depth(services: Services) -> Metric:
    family = GaugeMetricFamily(
        "paystream_queue_depth",
        "Messages in a Dramatiq queue (state: ready, delayed for a retry, or dead).",
        labels=["queue", "state"],
    )
    for (queue, state), count in (await services.work.depths()).items():
        family.add_metric([queue, state], count)
    return family


async def _outbox(services: Services) -> list[Metric]:
    """Events written but not yet on the stream, and the age of the oldest."""
    async with connection(services.pool) as conn:
        backlog = await unpublished_backlog(conn)
    waiting, lag = (0, 0.0) if backlog is None else (backlog.unpublished, backlog.lag_seconds)
    return [
        GaugeMetricFamily(
            "paystream_outbox_unpublished", "Outbox events not yet published.", value=waiting
        ),
        GaugeMetricFamily(
            "paystream_outbox_lag_seconds",
            "Age of the oldest outbox event not yet published (0 when none waits).",
            value=lag,
        ),
    ]


async def _scraped(services: Services) -> list[Metric]:
    """What can be read now; a backing service that does not answer in time
    leaves its families out (the scrape still answers)."""
    families: list[Metric] = []
    try:
        async with asyncio.timeout(_SCRAPE_TIMEOUT):
            families.append(await _queue_depth(services))
    except (RedisError, TimeoutError) as error:
        logger.warning("metrics: queue depth not read: %s", error)
    try:
        async with asyncio.timeout(_SCRAPE_TIMEOUT):
            families.extend(await _outbox(services))
    except (StoreUnavailable, TimeoutError) as error:
        logger.warning("metrics: outbox lag not read: %s", error)
    return families


async def metrics(call: Call[None, None]) -> Answer:
    """Its own token, not an API key: the scraper is not a merchant or an operator."""
    services = call.services
    token = services.config.metrics_token
    if token:
        given = bearer_token(call.request) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Problem(
                "authentication_required",
                "send Authorization: Bearer <metrics token>",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    body, media_type = exposition([_Families(await _scraped(services))])
    return Response(body, media_type=media_type)
