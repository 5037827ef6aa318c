"""`GET /metrics`: the Prometheus exposition of every paystream process (see
`telemetry.metrics`), plus what is read at scrape time: from Redis, the depth
of each Dramatiq queue and each PSP's circuit; from Postgres, the outbox's
lag, the payments waiting on their PSP and the audit log's seal lag. Every
gateway reads the same: with several, aggregate these with `max`, not `sum`.
Open unless `PAYSTREAM_METRICS_TOKEN` is set; then it wants `Authorization:
Bearer <token>`."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable
from collections.abc import Callable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from starlette.responses import Response

from gateway.auth import bearer_token
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.problems import Problem
from gateway.types import Services
from store.audit import seal_backlog
from store.db import connection
from store.errors import StoreUnavailable
from store.outbox import unpublished_backlog
from store.payments import waiting_by_psp
from store.statements import Backlog
from telemetry.metrics import exposition

logger = logging.getLogger("paystream.gateway.metrics")

_SCRAPE_TIMEOUT = 2.0


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


async def _from_redis(services: Services) -> list[Metric]:
    """Each Dramatiq queue's depth, and each PSP's circuit (left out while
    Redis cannot say)."""
    depth = _gauge(
        "paystream_queue_depth",
        "Messages in a Dramatiq queue (state: ready, delayed for a retry, or dead).",
        ["queue", "state"],
    )
    for (queue, state), count in (await services.work.depths()).items():
        depth.add_metric([queue, state], count)
    circuit = _gauge(
        "paystream_psp_circuit_open",
        "1 while a PSP's circuit breaker is open (its payments wait PENDING), else 0.",
        ["psp"],
    )
    names = services.config.connectors.names()
    for psp, state in (await services.psp_health(services.redis, names)).items():
        if state != "unknown":
            circuit.add_metric([psp], 1 if state == "circuit_open" else 0)
    return [depth, circuit]


async def _from_postgres(services: Services) -> list[Metric]:
    """Events not yet on the stream; payments waiting on each PSP; audit
    rows not sealed yet. Each with the age of the oldest."""
    async with connection(services.pool) as conn:
        outbox = await unpublished_backlog(conn)
        waiting = {row.psp: row for row in await waiting_by_psp(conn)}
        audit = await seal_backlog(conn)
    pending = _gauge("paystream_payments_pending", "Payments PENDING at a PSP.", ["psp"])
    oldest = _gauge(
        "paystream_payments_pending_oldest_seconds",
        "Age of a PSP's oldest PENDING payment (0 when none waits).",
        ["psp"],
    )
    flagged = _gauge(
        "paystream_payments_flagged",
        "A PSP's payments flagged for reconciliation: the janitor could not learn their outcome.",
        ["psp"],
    )
    for psp in dict.fromkeys([*services.config.connectors.names(), *waiting]):
        row = waiting.get(psp)
        pending.add_metric([psp], row.pending if row else 0)
        oldest.add_metric([psp], row.oldest_pending_seconds if row else 0.0)
        flagged.add_metric([psp], row.flagged if row else 0)
    return [
        *_backlog(
            outbox,
            ("paystream_outbox_unpublished", "Outbox events not yet published."),
            (
                "paystream_outbox_lag_seconds",
                "Age of the oldest outbox event not yet published (0 when none waits).",
            ),
        ),
        pending,
        oldest,
        flagged,
        *_backlog(
            audit,
            (
                "paystream_audit_unsealed",
                "Audit log rows not yet chained by the sealer (the janitor).",
            ),
            (
                "paystream_audit_seal_lag_seconds",
                "Age of the oldest audit log row not yet sealed (0 when all are).",
            ),
        ),
    ]


def _backlog(
    backlog: Backlog | None, waiting: tuple[str, str], lag: tuple[str, str]
) -> list[Metric]:
    """A backlog's two gauges: how many wait, and the age of the oldest."""
    return [
        GaugeMetricFamily(*waiting, value=backlog.waiting if backlog else 0),
        GaugeMetricFamily(*lag, value=backlog.lag_seconds if backlog else 0.0),
    ]


async def _read(
    what: str, read: Callable[[Services], Awaitable[list[Metric]]], services: Services
) -> list[Metric]:
    """A backing service that does not answer in time leaves its families
    out (the scrape still answers)."""
    try:
        async with asyncio.timeout(_SCRAPE_TIMEOUT):
            return await read(services)
    except (RedisError, StoreUnavailable, TimeoutError) as error:
        logger.warning("metrics: %s not read: %s", what, error)
        return []


async def _scraped(services: Services) -> list[Metric]:
    from_redis, from_postgres = await asyncio.gather(
        _read("queue depths and circuits", _from_redis, services),
        _read("backlogs", _from_postgres, services),
    )
    return [*from_redis, *from_postgres]


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
