"""ASGI entry points for uvicorn (`--factory`): built from the settings of the
process that serves them."""

from __future__ import annotations

from starlette.applications import Starlette

from paystream.bootstrap import gateway_app
from paystream.settings import settings
from telemetry.logs import configure_logging


def gateway() -> Starlette:
    configure_logging(settings().log_level, settings().log_format)
    return gateway_app(settings())
