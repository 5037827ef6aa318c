"""What every connector does around a call to its PSP, whatever carries it
(httpx, a PSP's SDK): a span, the latency histogram by PSP, operation and
outcome, and the headers that let the PSP's side of a call be found from ours."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from opentelemetry.trace import SpanKind

from psp.protocol import Answered
from psp.protocol import NotFound
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown
from telemetry import tracing
from telemetry.logs import context
from telemetry.metrics import psp_call_seconds
from telemetry.metrics import timed

R = TypeVar("R")

_OUTCOMES: dict[type, str] = {
    Answered: "answered",
    Rejected: "rejected",
    Retryable: "retryable",
    Unknown: "unknown",
    NotFound: "not_found",
}


def observed(psp: str, operation: str, call: Callable[[], R]) -> R:
    """Run one call to a PSP (its result a `CallResult` or an `InquiryResult`),
    traced and timed under the PSP's name, the operation and how it ended."""
    with observing(psp, operation) as labels:
        result = call()
        labels["outcome"] = _OUTCOMES[type(result)]
    return result


@contextmanager
def observing(psp: str, operation: str) -> Iterator[dict[str, str]]:
    """The span and latency of a PSP call whose outcome is not a result
    (a report streamed): the block sets `outcome`, "error" if it raises."""
    with (
        tracing.span(
            f"psp {operation}", SpanKind.CLIENT, **{"psp.name": psp, "psp.operation": operation}
        ),
        timed(psp_call_seconds, psp=psp, operation=operation, outcome="error") as labels,
    ):
        yield labels


def correlation_headers() -> dict[str, str]:
    """Headers that let the PSP's side of a call be found from ours: the
    request and payment it serves (from the log context), the trace."""
    bound = context()
    headers = tracing.inject()
    for name, header in (("request_id", "X-Request-Id"), ("payment_id", "X-Payment-Id")):
        if isinstance(value := bound.get(name), str):
            headers[header] = value
    return headers
