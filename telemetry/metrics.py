"""Prometheus metrics (prometheus-client).

Every process records into its own metrics; with `PROMETHEUS_MULTIPROC_DIR`
set (`paystream up` sets it to `<data-dir>/metrics`; for the Procfile, point
every process at one folder, emptied before they start) they record into files
there, and the gateway's `/metrics` serves the sum over all of them: one scrape
carries the gateway, the workers (with Dramatiq's own middleware), the
janitor, the relay and the webhook deliverer. What is a state rather than an
event (queue depth, outbox lag) is read from Redis and Postgres at scrape time.

Counters count facts once they are final: a payment's transition is counted
by whoever wrote it, after its transaction committed (`count_transitions`),
so a transaction that rolls back (a lost race) counts nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from payments.records import TimelineEvent

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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


def count_transitions(psp: str, events: Iterable[TimelineEvent]) -> None:
    """Count timeline events of payments of one PSP, written by a transaction
    that has committed."""
    for event in events:
        payment_transitions.labels(event.type, event.to_status, event.source, psp).inc()


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


def exposition(extra: list[Collector]) -> tuple[bytes, str]:
    """The text every scrape gets: this process's metrics, or every
    process's in multiprocess mode, then the scrape-time collectors."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if extra:
        scraped = CollectorRegistry()
        for collector in extra:
            scraped.register(collector)
        body += generate_latest(scraped)
    return body, CONTENT_TYPE_LATEST
