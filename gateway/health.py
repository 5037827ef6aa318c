"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: its
backing services answer). Readiness is what a load balancer should route on."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import RedisError

from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import json_response
from gateway.schemas.common import Health
from gateway.types import Services
from store.db import connection
from store.db import ping
from store.errors import StoreUnavailable

_CHECK_TIMEOUT = 2.0


def health_resource(status: str, checks: dict[str, str]) -> dict[str, Any]:
    return {"status": status, "checks": checks}


async def healthz(call: Call[None, None]) -> Answer:
    return health_resource("ok", {})


async def _postgres(services: Services) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT), connection(services.pool) as conn:
            await ping(conn)
    except (StoreUnavailable, TimeoutError):
        return "unavailable"
    return "ok"


async def _redis(services: Services) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            await services.redis.ping()
    except (RedisError, TimeoutError):
        return "unavailable"
    return "ok"


async def _psps(services: Services, redis: str) -> dict[str, str]:
    """Each PSP's circuit (`psp:<name>`), and `psp`, the worst of them."""
    names = services.config.connectors.names()
    states = (
        await services.psp_health(services.redis, names)
        if redis == "ok"
        else dict.fromkeys(names, "unknown")
    )
    worst = next(
        (s for s in ("circuit_open", "unknown") if s in states.values()),
        "ok" if redis == "ok" else "unknown",
    )
    return {"psp": worst, **{f"psp:{name}": state for name, state in states.items()}}


async def readyz(call: Call[None, None]) -> Answer:
    """503 when Postgres is down (writes cannot be accepted). Redis down, or
    a PSP behind an open circuit breaker, is `degraded`, still 200: payments
    are accepted and completed later (another PSP's go on meanwhile)."""
    services = call.services
    postgres, redis = await asyncio.gather(_postgres(services), _redis(services))
    checks = {"postgres": postgres, "redis": redis, **await _psps(services, redis)}
    if postgres != "ok":
        return json_response(health_resource("unavailable", checks), 503)
    status = "ready" if redis == "ok" and checks["psp"] != "circuit_open" else "degraded"
    return health_resource(status, checks)


ENDPOINTS = (
    Endpoint("GET", "/healthz", healthz, "Liveness", "operations", response=Health),
    Endpoint(
        "GET",
        "/readyz",
        readyz,
        "Readiness",
        "operations",
        response=Health,
        other_responses=((503, Health),),
    ),
)
