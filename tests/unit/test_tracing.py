"""Tracing, on: a request's trace continues in the actor its message reaches
and in the PSP call the actor makes, and the PSP is sent the trace context."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from psp.protocol import AuthorizeRequest
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from telemetry import tracing
from telemetry.logs import bind_context
from telemetry.logs import clear_context
from telemetry.message_context import OPTION
from telemetry.message_context import MessageContext

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    if not tracing.enabled():  # the global provider can be set once per process
        tracing.configure_tracing("paystream-test", enabled=True, exporter=_exporter)
    _exporter.clear()
    yield _exporter
    clear_context()


def test_tracing_off_injects_nothing_into_messages_or_psp_calls() -> None:
    if tracing.enabled():
        pytest.skip("another test of this process turned tracing on")  # order-dependent only
    assert tracing.inject() == {}


def test_a_message_sent_in_a_request_span_runs_its_actor_and_psp_call_in_the_same_trace(
    spans: InMemorySpanExporter,
) -> None:
    sent_headers: list[httpx.Headers] = []

    def psp(request: httpx.Request) -> httpx.Response:
        sent_headers.append(request.headers)
        return httpx.Response(
            201,
            json={
                "id": "ch_1",
                "reference": "pay_1",
                "status": "authorized",
                "amount": 100,
                "capturedAmount": 0,
                "currency": "EUR",
            },
        )

    client = SimulatorConnector(
        SimulatorClientConfig(base_url="http://psp.test", api_key="k"),
        transport=httpx.MockTransport(psp),
    )
    middleware = MessageContext()
    message: Message[None] = Message("payments", "drive_operation", ("op_1",), {}, {})
    with tracing.span("POST /payments", SpanKind.SERVER):
        bind_context(request_id="req_9", payment_id="pay_1")
        middleware.before_enqueue(None, message, 0)  # type: ignore[arg-type]
    clear_context()

    # In the worker: the actor's span continues the request's trace.
    middleware.before_process_message(None, MessageProxy(message))  # type: ignore[arg-type]
    client.authorize(
        AuthorizeRequest(
            reference="pay_1", amount=100, currency="EUR", token="tok_visa", capture=False
        ),
        idempotency_key="authorize:pay_1",
    )
    middleware.after_process_message(None, MessageProxy(message))  # type: ignore[arg-type]

    carried = message.options[OPTION]
    assert carried["request_id"] == "req_9" and carried["payment_id"] == "pay_1"
    assert "traceparent" in carried
    by_name = {span.name: span for span in spans.get_finished_spans()}
    request, actor, call = (
        by_name["POST /payments"],
        by_name["actor drive_operation"],
        by_name["psp authorize"],
    )
    assert actor.context.trace_id == request.context.trace_id == call.context.trace_id
    assert actor.parent is not None and actor.parent.span_id == request.context.span_id
    assert call.parent is not None and call.parent.span_id == actor.context.span_id
    # The PSP is told the request, the payment and the trace it serves.
    [headers] = sent_headers
    assert headers["x-request-id"] == "req_9" and headers["x-payment-id"] == "pay_1"
    assert headers["traceparent"].split("-")[1] == format(call.context.trace_id, "032x")
