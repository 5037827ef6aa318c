"""`/console/api/stats`: the last hour of the merchant's payments, minute by
minute (how many were created, how long the PSP took to say yes, p50 and p99),
and the status mix. The dashboard's script polls it and draws the charts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole
from gateway.console.session import current_session
from gateway.console.session import services_of
from gateway.http import json_response
from gateway.problems import Problem
from payments.resources import timestamp
from store.console import MinuteFigures
from store.console import minute_figures
from store.console import status_mix
from store.db import connection
from store.errors import StoreUnavailable

WINDOW_MINUTES = 60


def window_start(now: datetime) -> datetime:
    """The first of the window's minutes; the last one is the current minute."""
    return now.replace(second=0, microsecond=0) - timedelta(minutes=WINDOW_MINUTES - 1)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def stats_document(
    start: datetime, figures: Sequence[MinuteFigures], mix: dict[str, int]
) -> dict[str, Any]:
    """Every minute of the window, the quiet ones included (as zero, with no
    latency), so that a chart's x axis is time."""
    by_minute = {f.minute.astimezone(UTC): f for f in figures}
    minutes, total = [], 0
    for offset in range(WINDOW_MINUTES):
        minute = start + timedelta(minutes=offset)
        found = by_minute.get(minute)
        total += found.created if found else 0
        minutes.append(
            {
                "minute": timestamp(minute),
                "created": found.created if found else 0,
                "p50Ms": _ms(found.p50) if found else None,
                "p99Ms": _ms(found.p99) if found else None,
            }
        )
    return {
        "windowMinutes": WINDOW_MINUTES,
        "minutes": minutes,
        "created": total,
        "statusMix": mix,
    }


async def stats(request: Request) -> Response:
    try:
        signed_in = await current_session(request)
        if signed_in is None:
            raise Problem("authentication_required", "sign in to the console")
        if not signed_in.can(MerchantRole.PAYMENTS_READ):
            raise Problem("insufficient_role", "the figures are a merchant's payments")
        services = services_of(request)
        start = window_start(datetime.now(UTC))
        merchant_id = signed_in.principal.merchant_id
        async with connection(services.pool) as conn:
            figures = await minute_figures(conn, merchant_id, start)
            mix = await status_mix(conn, merchant_id, start)
    except (RedisError, StoreUnavailable):
        raise Problem("service_unavailable", "Postgres or Redis cannot be reached") from None
    return json_response(stats_document(start, figures, mix), headers={"Cache-Control": "no-store"})
