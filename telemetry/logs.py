"""Logging for every paystream process: structured lines (structlog, JSON or
text), the context that lets one payment be followed across processes, and
the masking, on the whole rendered line, of what must never be written down:
anything card-like (PCI DSS 3.5.1: no readable PAN anywhere it is stored,
logs included), credentials in URLs, API keys and webhook secrets, and the
secret settings themselves."""

from __future__ import annotations

import logging
import os
import re
import sys

import orjson
import structlog
from structlog.typing import EventDict
from structlog.typing import Processor

from payments.card_data import mask_pans

_PATTERNS = (
    (re.compile(r"(?<=://)([^:/@\s]*):([^@\s]+)@"), r"\1:***@"),
    (re.compile(r"\bsk_[A-Za-z0-9_\-]{16,}"), "sk_***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{16,}"), "whsec_***"),
)
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """A value to mask wherever it would appear (the secret settings)."""
    if len(value) >= 8:
        _secrets.add(value)


def redact(text: str) -> str:
    text = mask_pans(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter for every stdlib logger, with the whole line
    redacted last: the message with its arguments, the bound values and the
    traceback are all covered, in one pass."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """One line per event, through structlog: JSON objects (`json`, for log
    shippers) or aligned text (`console`, for people). Every line carries
    what the code bound to the context: the request id, and the payment id
    once known, from the gateway into the actors (see `bind_context`)."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=40)
    )
    formatter = _RedactingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # uvicorn and dramatiq bring their own handlers; route them through ours.
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One line per PSP call is noise at INFO; failures are logged by the caller.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Access lines cost time on every request and would carry query strings.
    logging.getLogger("uvicorn.access").disabled = True


def bind_context(**values: str | None) -> None:
    """Carry values (request_id, payment_id) on every line logged from here
    on in this task or thread, until `clear_context`."""
    structlog.contextvars.bind_contextvars(
        **{name: value for name, value in values.items() if value is not None}
    )


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


def context() -> dict[str, object]:
    """What is bound now (to hand on to another process)."""
    return dict(structlog.contextvars.get_contextvars())


def _add_process(logger: object, method: str, event: EventDict) -> EventDict:
    event["pid"] = os.getpid()
    return event


def _json(value: object, **options: object) -> str:
    return orjson.dumps(value, default=str).decode()
