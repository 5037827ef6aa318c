"""OpenTelemetry tracing, off by default (`PAYSTREAM_TRACING=true` turns it
on). Spans: each API request (OpenTelemetry's ASGI middleware, which
`paystream.bootstrap.gateway_app` adds), each actor message (a child of the
request that enqueued it, through the message's options), each PSP call (its
context sent on to the PSP in `traceparent`). Exported over OTLP
HTTP to OpenTelemetry's own `OTEL_EXPORTER_OTLP_ENDPOINT`.

Off, every function here costs next to nothing: the API's default tracer
records nothing and injects nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace import SpanKind
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode

_state = threading.local()
_enabled = False


def configure_tracing(service_name: str, *, enabled: bool, exporter: Any = None) -> None:
    """Install a tracer provider for this process (once). `exporter` replaces
    the OTLP exporter (tests pass an in-memory one)."""
    global _enabled
    if not enabled:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = True


def enabled() -> bool:
    return _enabled


def tracer() -> trace.Tracer:
    return trace.get_tracer("paystream")


def inject() -> dict[str, str]:
    """The current trace context as headers (`traceparent`), if any."""
    if not _enabled:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def span(name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: str) -> Iterator[Span]:
    with tracer().start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def start_message_span(actor: str, message_id: str, carried: Mapping[str, Any]) -> None:
    """A span for an actor run, child of the trace its message carried."""
    if not _enabled:
        return
    parent = propagate.extract({k: v for k, v in carried.items() if isinstance(v, str)})
    current = tracer().start_span(
        f"actor {actor}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "dramatiq", "messaging.message.id": message_id},
    )
    token = otel_context.attach(trace.set_span_in_context(current, parent))
    _state.message = (current, token)


def end_message_span(exception: BaseException | None) -> None:
    started = getattr(_state, "message", None)
    if started is None:
        return
    _state.message = None
    current, token = started
    if exception is not None:
        current.record_exception(exception)
        current.set_status(Status(StatusCode.ERROR, type(exception).__name__))
    current.end()
    otel_context.detach(token)
