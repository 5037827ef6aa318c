"""Prometheus metrics (prometheus-client).

Every process records into its own metrics; with `PROMETHEUS_MULTIPROC_DIR`
set (`paystream up` sets it to `<data-dir>/metrics`; for the Procfile, point
every process at one folder, emptied before they start) they record into files
there, and the gateway's `/metrics` serves the sum over all of them: one scrape
carries the gateway, the workers (with Dramatiq's own middleware), the
janitor, the relay and the webhook deliverer. What is a state rather than an
event (queue depth, outbox lag, payments waiting on their PSP, a PSP's circuit,
the audit log's seal) is read from Redis and Postgres at scrape time.

Where the processes do not share a folder (one container each), each serves
its own: the gateway on `/metrics`, the workers through Dramatiq's exporter
(`dramatiq_prom_port`), and the janitor, the relay and the webhook deliverer
on `PAYSTREAM_METRICS_PORT` (`serve_metrics`).

Counters count facts once they are final: a payment's transition is counted
by whoever wrote it, after its transaction committed (`count_transitions`),
so a transaction that rolls back (a lost race) counts nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from payments.records import PaymentRecord
from payments.records import TimelineEvent
from payments.status import PaymentStatus

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From tens of milliseconds (a quiet stack: p50 40 ms, p99 112 ms in
# docs/bench/) through the worker's retries (about 3.5 minutes) to the
# janitor's first re-drives (minutes to half an hour).
_AUTHORIZATION_BUCKETS = (
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip

http_request_seconds = Histogram(
    "paystream_http_request_duration_seconds",
    "Time to answer an API request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
payment_transitions = Counter(
    "paystream_payment_transitions",
    "Payment timeline events written, by event type, status reached, source"
    " (api, psp, webhook, janitor, reconciliation) and the payment's PSP.",
    ["type", "status", "source", "psp"],
)
psp_call_seconds = Histogram(
    "paystream_psp_call_duration_seconds",
    "PSP calls by PSP, operation and outcome (answered, rejected, retryable, unknown, not_found).",
    ["psp", "operation", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
time_to_authorized = Histogram(
    "paystream_payment_time_to_authorized_seconds",
    "Seconds from a payment's creation to the PSP's first yes (PENDING to AUTHORIZED"
    " or CAPTURED), by the payment's PSP.",
    ["psp"],
    buckets=_AUTHORIZATION_BUCKETS,
)
psp_circuit_openings = Counter(
    "paystream_psp_circuit_openings",
    "Times a PSP's circuit breaker opened after calls in a row without an answer.",
    ["psp"],
)
webhook_delivery_failures = Counter(
    "paystream_webhook_delivery_failures",
    "Merchant webhook delivery attempts that failed, by reason.",
    ["reason"],
)
webhook_dead_letters = Counter(
    "paystream_webhook_dead_letters",
    "Merchant webhook deliveries that used every try and became dead letters.",
)
reconciliation_lines = Counter(
    "paystream_reconciliation_lines",
    "Settlement report lines classified by finished reconciliation runs, by class"
    " (matched, or the kind of break).",
    ["result"],
)


_FIRST_YES = {PaymentStatus.AUTHORIZED.value, PaymentStatus.CAPTURED.value}


def count_transitions(payment: PaymentRecord, events: Iterable[TimelineEvent]) -> None:
    """Count timeline events of one payment, written by a transaction that
    has committed; the PSP's first yes is also timed from the payment's
    creation (as the console's dashboard reads it from the timeline)."""
    for event in events:
        payment_transitions.labels(event.type, event.to_status, event.source, payment.psp).inc()
        if event.from_status == PaymentStatus.PENDING.value and event.to_status in _FIRST_YES:
            waited = (event.created_at - payment.created_at).total_seconds()
            time_to_authorized.labels(payment.psp).observe(max(waited, 0.0))


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[dict[str, str]]:
    """Observe the block's duration; the block may fill in labels it learns
    on the way (an outcome) through the yielded dict."""
    found = dict(labels)
    began = time.perf_counter()
    try:
        yield found
    finally:
        histogram.labels(**found).observe(time.perf_counter() - began)


def _recorded() -> CollectorRegistry:
    """This process's metrics, or every process's in multiprocess mode."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(extra: list[Collector]) -> tuple[bytes, str]:
    """The text every scrape gets: what was recorded, then the scrape-time
    collectors."""
    body = generate_latest(_recorded())
    if extra:
        scraped = CollectorRegistry()
        for collector in extra:
            scraped.register(collector)
        body += generate_latest(scraped)
    return body, CONTENT_TYPE_LATEST


def serve_metrics(port: int | None, host: str = "0.0.0.0") -> None:  # noqa: S104
    """Serve what this process records on `port` (a thread), for a process
    that has no HTTP server of its own and runs in a container of its own.
    Every address, as a container's port must be: the network around it
    decides who reaches it."""
    if port is not None:
        start_http_server(port, host, registry=_recorded())
