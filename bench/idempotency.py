"""Idempotency: replays of one request with wrk, next to bare Starlette at the
same concurrency, and a storm of requests with one key at one instant, which
must leave exactly one payment."""

from __future__ import annotations

from typing import Any

import psycopg

from bench.harness import Harness
from bench.ingress import ceiling_server
from bench.ingress import wrk
from bench.wrk import run_wrk

CONCURRENCY = 64


def measure(h: Harness) -> dict[str, Any]:
    h.say("idempotency: replays of one request, and bare Starlette")
    with ceiling_server(h) as ceiling_url:
        ceiling = wrk(h, ceiling_url, CONCURRENCY, "replay-bare")
    replay = run_wrk(
        f"{h.info.gateway_url}/payments",
        api_key=h.info.api_key,
        concurrency=CONCURRENCY,
        seconds=h.sizes.seconds,
        prefix=f"{h.run_id}-replay",
        replay=True,
    )
    h.say(f"idempotency: a storm of {h.sizes.storm:,} requests with one key")
    storm = h.loadgen("storm", count=h.sizes.storm)
    with psycopg.connect(h.info.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM payments WHERE order_id = %s", (storm["orderId"],)
        ).fetchone()
    storm["payments"] = int(row[0]) if row else 0
    return {
        "replay": replay.to_json(),
        "ceiling": ceiling,
        "ratio": round(replay.per_second / ceiling["perSecond"], 3),
        "storm": storm,
    }
