"""End to end: payments from POST to CAPTURED, in a burst (throughput) and at
half that rate (latency), next to the queue ceiling: a Dramatiq no-op actor
on the same Redis with as many workers, the stack's own paused meanwhile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import redis

from bench.cpu import cpu_use
from bench.harness import BACKGROUND
from bench.harness import Harness
from bench.noop import DONE as NOOP_DONE
from stack.ports import wait_until


def measure(h: Harness) -> dict[str, Any]:
    sizes = h.sizes
    h.say(f"end to end: {sizes.e2e_payments:,} payments from POST to CAPTURED")
    with h.profiling("worker", "e2e-worker"), cpu_use(h.roots()) as cpu:
        burst = h.loadgen("burst", count=sizes.e2e_payments, concurrency=32)
        throughput = settled(h, burst)
    throughput["cpuMsPerPayment"] = cpu.per(throughput["payments"])
    rate = max(10.0, round(throughput["perSecond"] / 2))
    h.say(f"end to end: latency at {rate:.0f} payments/s (half the capacity)")
    paced = h.loadgen("rate", rate=rate, seconds=sizes.seconds, connections=64)
    latency = settled(h, paced)
    with h.paused(*BACKGROUND), noop_workers(h):
        h.say(f"queue ceiling: {sizes.noop_messages:,} Dramatiq no-op messages")
        noop = run_noop(h, sizes.noop_messages, None)
        h.say(f"queue ceiling: latency at {rate:.0f} messages/s")
        noop_paced = run_noop(h, int(rate * sizes.seconds), rate)
    return {
        "paystream": throughput,
        "ceiling": noop,
        "ratio": round(throughput["perSecond"] / noop["perSecond"], 3),
        "latency": {"offeredPerSecond": rate, "paystream": latency, "ceiling": noop_paced},
    }


def settled(h: Harness, sent: dict[str, Any]) -> dict[str, Any]:
    """Wait until every payment the load generator created is CAPTURED;
    how fast they got there and how long each took to be authorized."""
    prefix = sent["prefix"] + "-"
    accepted = sent["statuses"].get("201", 0)
    with psycopg.connect(h.info.database_url, autocommit=True) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM payments WHERE merchant_id = %s AND starts_with(order_id, %s)",
                ("mer_demo", prefix),
            )
        ]

        def captured() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM payments WHERE id = ANY(%s) AND status = 'CAPTURED'",
                (ids,),
            ).fetchone()
            return row is not None and row[0] == len(ids)

        wait_until(captured, timeout=900, what="every payment to be captured", interval=0.1)
        row = conn.execute(
            """
            WITH firsts AS (
                SELECT p.id, p.created_at,
                       min(e.created_at)
                           FILTER (WHERE e.to_status IN ('AUTHORIZED', 'CAPTURED'))
                           AS authorized_at,
                       min(e.created_at) FILTER (WHERE e.to_status = 'CAPTURED') AS captured_at
                FROM payments p JOIN payment_events e ON e.payment_id = p.id
                WHERE p.id = ANY(%s) GROUP BY p.id, p.created_at
            )
            SELECT count(*),
                   extract(epoch FROM max(captured_at)),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY authorized_at - created_at),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY authorized_at - created_at),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY captured_at - created_at),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY captured_at - created_at)
            FROM firsts
            """,
            (ids,),
        ).fetchone()
    assert row is not None
    count, last_captured, a50, a99, c50, c99 = row
    seconds = float(last_captured) - sent["startedAt"]
    return {
        "payments": int(count),
        "accepted": accepted,
        "seconds": round(seconds, 2),
        "perSecond": round(count / seconds, 1),
        "authorizedP50Ms": round(a50.total_seconds() * 1000, 1),
        "authorizedP99Ms": round(a99.total_seconds() * 1000, 1),
        "capturedP50Ms": round(c50.total_seconds() * 1000, 1),
        "capturedP99Ms": round(c99.total_seconds() * 1000, 1),
    }


def run_noop(h: Harness, count: int, rate: float | None) -> dict[str, Any]:
    """The no-op producer (bench.noop) in a process of its own; its figures."""
    command = [sys.executable, "-m", "bench.noop", "--count", str(count)]
    if rate:
        command += ["--rate", str(rate)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, env=_noop_env(h))
    if out.returncode != 0:
        raise RuntimeError(f"the no-op producer failed: {out.stderr[-1500:]}")
    result = json.loads(out.stdout)
    latencies: list[float] = result.pop("latencies")

    def percentile(share: float) -> float:
        index = min(len(latencies) - 1, int(share * len(latencies)))
        return round(latencies[index] * 1000, 1)

    return {
        "messages": result["completed"],
        "seconds": round(result["seconds"], 2),
        "perSecond": round(result["completed"] / result["seconds"], 1),
        "latencyP50Ms": percentile(0.5),
        "latencyP99Ms": percentile(0.99),
    }


def _noop_env(h: Harness) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": h.info.redis_url,
        # As `paystream worker` sets it: the idle poll of a Redis consumer.
        "dramatiq_worker_timeout": "100",
    }


@contextmanager
def noop_workers(h: Harness) -> Iterator[None]:
    """Dramatiq workers for the no-op actor, as many as paystream's."""
    log = (h.folder / "noop-workers.log").open("ab")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "dramatiq", "bench.noop"),
            *("--processes", str(h.options.workers), "--threads", str(h.options.threads)),
        ],
        env=_noop_env(h),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        run_noop(h, 1, None)  # the workers are up once one message has run
        yield
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        with redis.Redis.from_url(h.info.redis_url) as client:
            client.delete(NOOP_DONE)
