"""A drill end to end: the fault knobs, a merchant webhook endpoint, the
workload, the checks, and a report as a table and as JSON."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from drill.checks import Check
from drill.checks import Verdict
from drill.checks import every_event_reached_the_merchant
from drill.checks import run_checks
from drill.plan import make_plans
from drill.psps import PspFaults
from drill.psps import PspUnderTest
from drill.psps import Simulator
from drill.receiver import Receiver
from drill.receiver import serving_receiver
from drill.workload import PaymentRun
from drill.workload import collect
from drill.workload import run_workload
from paystream.cli.options import Concurrency
from paystream.cli.options import Payments
from paystream.cli.options import option
from paystream.cli.options import option_group
from stack.description import StackInfo
from store.outbox import queued_events

# The stack a drill runs on expects trouble: short PSP timeouts, quick
# retries, an eager janitor and fast webhook retries, so hundreds of faults
# resolve in minutes.
DRILL_SETTINGS = {
    "PAYSTREAM_PSP_READ_TIMEOUT": "1.0",
    # localstripe (one Python process) takes seconds to list a page of
    # intents under a drill's load, which an inquiry without Stripe's id does.
    "PAYSTREAM_STRIPE_READ_TIMEOUT": "5.0",
    # ... and lists oldest first, so an inquiry would read every intent of
    # the drill: it asks search alone, which the Stripe proxy answers.
    "PAYSTREAM_STRIPE_INQUIRY_SCAN_LIMIT": "0",
    "PAYSTREAM_RETRY_MIN_BACKOFF_MS": "100",
    "PAYSTREAM_RETRY_MAX_BACKOFF_MS": "2000",
    "PAYSTREAM_RETRY_MAX_ATTEMPTS": "12",
    "PAYSTREAM_BREAKER_OPEN_SECONDS": "1",
    "PAYSTREAM_JANITOR_IDLE_SECONDS": "3",
    "PAYSTREAM_JANITOR_SCHEDULE": "2,4,8,15,30,60,120",
    "PAYSTREAM_JANITOR_INTERVAL_SECONDS": "1",
    "PAYSTREAM_WEBHOOK_RETRY_SCHEDULE": "0.2,0.5,1,2,4,8,15,30,60",
    # The drill is the merchant's own load: its polling alone would pass the
    # per-key request limit, which is not what a drill tests.
    "PAYSTREAM_RATE_LIMIT_PER_SECOND": "0",
}


@dataclass(frozen=True)
class DrillOptions:
    """What a drill runs: the options of `paystream drill` (a chaos run's,
    `ChaosOptions`, are some of them)."""

    payments: int = option(500, Payments)
    seed: int = option(1, "Seed of the workload and of the faults.")
    concurrency: int = option(32, Concurrency)
    faults: PspFaults = option_group(PspFaults())
    endpoint_failures: int = option(
        1, "The merchant endpoint fails this many first tries per event."
    )
    # How long a payment may take to settle before the drill gives up on it.
    settle_timeout: float = 600.0
    # The PSP it runs on (`drill.psps`).
    psp: str = option(
        "simulator",
        "The PSP to prove it on: simulator, or stripe (localstripe behind the Stripe proxy).",
    )


@dataclass
class DrillReport(Verdict):
    options: DrillOptions
    checks: list[Check]
    injected: dict[str, int]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return self.report_json(faultsInjected=self.injected)


def register_endpoint(stack: StackInfo, receiver: Receiver) -> str:
    response = httpx.post(
        f"{stack.gateway_url}/webhook-endpoints",
        json={"url": receiver.url, "eventTypes": ["*"]},
        headers={"Authorization": f"Bearer {stack.api_key}"},
    )
    response.raise_for_status()
    receiver.secret = response.json()["secret"]
    return str(response.json()["endpointId"])


def run_drill(
    stack: StackInfo,
    options: DrillOptions,
    on_payment_done: Callable[[], None] = lambda: None,
    psp: PspUnderTest | None = None,
) -> DrillReport:
    """The drill on the stack's PSP `psp` (by default its simulator)."""
    psp = psp or Simulator(stack.simulator_url)
    started = time.monotonic()
    with serving_receiver() as receiver:
        endpoint_id = prepare(stack, psp, receiver, options)
        runs = run_payments(stack, psp, options, on_payment_done)
        checks, payment_ids, _ = check_payments(stack, psp, runs)
        injected = psp.faults(callbacks="webhooks")
        events = events_of(stack.database_url, payment_ids)
        checks.append(
            every_event_reached_the_merchant(events, receiver, endpoint_id, stack.database_url)
        )
        httpx.delete(
            f"{stack.gateway_url}/webhook-endpoints/{endpoint_id}",
            headers={"Authorization": f"Bearer {stack.api_key}"},
        )
    return DrillReport(options, checks, injected, time.monotonic() - started)


def prepare(stack: StackInfo, psp: PspUnderTest, receiver: Receiver, options: DrillOptions) -> str:
    """The merchant's endpoint registered, failing the first tries of each
    event, and the PSP's fault knobs set; the endpoint's id."""
    receiver.fail_first = options.endpoint_failures
    endpoint_id = register_endpoint(stack, receiver)
    psp.set_faults(options)
    return endpoint_id


def run_payments(
    stack: StackInfo, psp: PspUnderTest, options: DrillOptions, on_done: Callable[[], None]
) -> list[PaymentRun]:
    """The seeded workload through the API, each payment until it settles."""
    return asyncio.run(
        run_workload(
            stack.gateway_url,
            stack.api_key,
            make_plans(options.payments, options.seed, psp.tokens),
            concurrency=options.concurrency,
            settle_timeout=options.settle_timeout,
            on_done=on_done,
        )
    )


def check_payments(
    stack: StackInfo, psp: PspUnderTest, runs: list[PaymentRun]
) -> tuple[list[Check], set[str], dict[str, Any]]:
    """Our side, read back through the API, against the PSP's book: the
    checks, the payments' ids and the book."""
    payments, timelines, by_order = asyncio.run(collect(stack.gateway_url, stack.api_key, runs))
    book = psp.book()
    return run_checks(runs, payments, timelines, by_order, book), set(payments), book


def events_of(database_url: str, payment_ids: set[str]) -> list[str]:
    """Every event the drill's payments produced, from the outbox."""
    with psycopg.connect(database_url) as conn:
        queued = queued_events(conn)
    return [event.event_id for event in queued if event.payment_id in payment_ids]
