"""Logging for every paystream process: one format, and a filter that masks
anything card-like before a line is written (PCI DSS 3.5.1: no readable PAN
anywhere it is stored, logs included)."""

from __future__ import annotations

import logging
import sys

from payments.card_data import mask_pans

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


class CardDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_pans(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_pans(text)
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(CardDataFilter())
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
