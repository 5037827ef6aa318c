"""The gateway application: endpoints, error handling and the lifespan that
opens (and closes) the Postgres pool and the Redis client."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.requests import Request
from starlette.responses import Response

from gateway import api_keys
from gateway import audit
from gateway import health
from gateway import operators
from gateway import payments
from gateway import psp_webhooks
from gateway import reconciliations
from gateway import refunds
from gateway import webhook_endpoints
from gateway.claims import Claims
from gateway.console import CONSOLE
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.limits import Limits
from gateway.metrics import metrics
from gateway.middleware import RequestContext
from gateway.middleware import RequestMetrics
from gateway.openapi import build_document
from gateway.principals import Principals
from gateway.problems import Problem
from gateway.problems import not_found
from gateway.problems import refusal
from gateway.router import build_routes
from gateway.types import GatewayConfig
from gateway.types import PspHealth
from gateway.types import Services
from gateway.types import WorkQueue
from payments.errors import DomainError
from store.errors import StoreUnavailable
from store.pool import open_async_pool

logger = logging.getLogger("paystream.gateway")

API_VERSION = "1.0.0"
ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    *payments.ENDPOINTS,
    *refunds.ENDPOINTS,
    *psp_webhooks.ENDPOINTS,
    *webhook_endpoints.ENDPOINTS,
    *reconciliations.ENDPOINTS,
    *api_keys.ENDPOINTS,
    *operators.ENDPOINTS,
    *audit.ENDPOINTS,
    *health.ENDPOINTS,
)


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return Problem("method_not_allowed", f"{request.method} is not allowed here").response()
    return not_found("resource").response()


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return refusal(exc).response()


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("Postgres unavailable: %s", exc)
    return Problem(
        "service_unavailable", "the database is unavailable", headers={"Retry-After": "1"}
    ).response()


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up before its body arrived: nobody to answer, nothing done.
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=499)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The exception may quote request data; the log filter masks card numbers.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return Problem("internal_error", "an internal error occurred").response()


async def _psp_not_watched(redis: Redis, psps: Sequence[str]) -> dict[str, str]:
    return dict.fromkeys(psps, "unknown")


def openapi_document() -> dict[str, Any]:
    """The document served at /openapi.json."""
    return build_document(ENDPOINTS, title="paystream", version=API_VERSION)


def create_app(
    config: GatewayConfig,
    make_work_queue: Callable[[Redis], WorkQueue],
    psp_health: PspHealth = _psp_not_watched,
) -> Starlette:
    document = openapi_document()

    async def openapi(call: Call[None, None]) -> Answer:
        return document

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await open_async_pool(
            config.database_url, min_size=config.db_pool_min, max_size=config.db_pool_max
        )
        redis = Redis.from_url(
            config.redis_url,
            socket_timeout=config.redis_timeout,
            socket_connect_timeout=config.redis_timeout,
        )
        app.state.services = Services(
            config=config,
            pool=pool,
            redis=redis,
            work=make_work_queue(redis),
            psp_health=psp_health,
            claims=Claims(redis),
            limits=Limits(
                redis, per_second=config.rate_limit_per_second, card_testing=config.card_testing
            ),
            principals=Principals(
                redis, pool, config.key_pepper, per_second=config.rate_limit_per_second
            ),
        )
        try:
            yield
        finally:
            await redis.aclose()
            await pool.close()

    routes = build_routes(ENDPOINTS)
    # Served beside the API, not part of its document.
    routes += build_routes(
        [
            Endpoint("GET", "/openapi.json", openapi, "OpenAPI", "ops"),
            Endpoint("GET", "/metrics", metrics, "Prometheus metrics", "ops"),
        ]
    )
    return Starlette(
        routes=[*routes, CONSOLE],  # the console: pages, not in the OpenAPI document
        lifespan=lifespan,
        middleware=[Middleware(RequestMetrics), Middleware(RequestContext, hsts=config.hsts)],
        exception_handlers={
            Problem: _problem,
            DomainError: _refused,
            HTTPException: _http_error,
            StoreUnavailable: _store_unavailable,
            ClientDisconnect: _client_gone,
            Exception: _unexpected,
        },
    )
