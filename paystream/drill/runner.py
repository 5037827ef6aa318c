"""A drill end to end: a stack of its own, the fault knobs, the workload, the
checks, and a report as a table and as JSON."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from paystream.drill.checks import Check, run_checks
from paystream.drill.plan import make_plans
from paystream.drill.workload import collect, run_workload
from paystream.stack.launcher import StackInfo

# The stack a drill runs on expects trouble: short PSP timeouts, quick
# retries and an eager janitor, so hundreds of faults resolve in minutes.
DRILL_SETTINGS = {
    "PAYSTREAM_PSP_READ_TIMEOUT": "1.0",
    "PAYSTREAM_RETRY_MIN_BACKOFF_MS": "100",
    "PAYSTREAM_RETRY_MAX_BACKOFF_MS": "2000",
    "PAYSTREAM_RETRY_MAX_ATTEMPTS": "12",
    "PAYSTREAM_BREAKER_OPEN_SECONDS": "1",
    "PAYSTREAM_JANITOR_IDLE_SECONDS": "3",
    "PAYSTREAM_JANITOR_SCHEDULE": "2,4,8,15,30,60,120",
    "PAYSTREAM_JANITOR_INTERVAL_SECONDS": "1",
}
# The simulator hangs a "timed out" call past the 1 s read timeout above.
HANG_MS = 1500


@dataclass(frozen=True)
class DrillOptions:
    payments: int = 500
    seed: int = 1
    concurrency: int = 32
    timeout_rate: float = 0.2
    lost_response_rate: float = 0.1
    error_rate: float = 0.1
    latency_ms: int = 2
    jitter_ms: int = 10
    # How long a payment may take to settle before the drill gives up on it.
    settle_timeout: float = 600.0


@dataclass
class DrillReport:
    options: DrillOptions
    checks: list[Check]
    injected: dict[str, int]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "options": asdict(self.options),
            "seconds": round(self.seconds, 1),
            "faultsInjected": self.injected,
            "checks": [
                {"name": c.name, "passed": c.passed, "counts": c.counts, "failures": c.failures}
                for c in self.checks
            ],
        }


def set_faults(simulator_url: str, options: DrillOptions) -> None:
    httpx.patch(
        f"{simulator_url}/_admin/faults",
        json={
            "seed": options.seed,
            "timeoutRate": options.timeout_rate,
            "lostResponseRate": options.lost_response_rate,
            "errorRate": options.error_rate,
            "latencyMs": options.latency_ms,
            "jitterMs": options.jitter_ms,
            "hangMs": HANG_MS,
        },
    ).raise_for_status()


def run_drill(
    stack: StackInfo, options: DrillOptions, on_payment_done: Callable[[], None] = lambda: None
) -> DrillReport:
    started = time.monotonic()
    set_faults(stack.simulator_url, options)
    plans = make_plans(options.payments, options.seed)
    runs = asyncio.run(
        run_workload(
            stack.gateway_url,
            stack.api_key,
            plans,
            concurrency=options.concurrency,
            settle_timeout=options.settle_timeout,
            on_done=on_payment_done,
        )
    )
    payments, timelines, by_order = asyncio.run(collect(stack.gateway_url, stack.api_key, runs))
    book = httpx.get(f"{stack.simulator_url}/_book", timeout=60).json()
    injected = httpx.get(f"{stack.simulator_url}/_admin/faults").json()["drawn"]
    checks = run_checks(runs, payments, timelines, by_order, book)
    return DrillReport(options, checks, injected, time.monotonic() - started)
