"""Logging for every paystream process: one format, and a filter that masks
what must never be written down before a line is: anything card-like (PCI DSS
3.5.1: no readable PAN anywhere it is stored, logs included), credentials in
URLs, API keys and webhook secrets, and the secret settings themselves."""

from __future__ import annotations

import logging
import re
import sys

from payments.card_data import mask_pans

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"

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


class SensitiveDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(SensitiveDataFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn and dramatiq bring their own handlers; route them through ours.
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One line per PSP call is noise at INFO; failures are logged by the caller.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Access lines cost time on every request and would carry query strings.
    logging.getLogger("uvicorn.access").disabled = True
