"""The context a Dramatiq message carries from whoever sent it to the actor
that runs it: the log context (request id, payment id) and, with tracing on,
the trace it belongs to. Written into the message's options when it is
enqueued, bound around the actor when it runs."""

from __future__ import annotations

from typing import Any

from dramatiq import Broker
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from telemetry import tracing
from telemetry.logs import bind_context
from telemetry.logs import clear_context
from telemetry.logs import context

OPTION = "paystream_context"


def outgoing() -> dict[str, Any]:
    """What a message sent from here should carry."""
    carried: dict[str, Any] = {
        name: value
        for name, value in context().items()
        if name in ("request_id", "payment_id") and isinstance(value, str)
    }
    carried.update(tracing.inject())
    return carried


class MessageContext(Middleware):
    def before_enqueue(self, broker: Broker, message: Message[Any], delay: int) -> None:
        carried = outgoing()
        if carried and OPTION not in message.options:
            message.options[OPTION] = carried

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        carried = message.options.get(OPTION) or {}
        clear_context()
        bind_context(
            request_id=carried.get("request_id"),
            payment_id=carried.get("payment_id"),
            actor=message.actor_name,
            message_id=message.message_id,
        )
        tracing.start_message_span(message.actor_name, message.message_id, carried)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        tracing.end_message_span(exception)
        clear_context()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        tracing.end_message_span(None)
        clear_context()
