"""What every request goes through before its route: a request id (taken from
X-Request-Id when sane, else made), a refusal of anything card-like in the
query string or the headers and of NUL characters in the path or the query
(Postgres cannot store them), and on TLS, HSTS on every answer. Then, apart,
the request's duration for the metrics."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote_to_bytes

from starlette.routing import Mount
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from gateway.problems import Problem
from payments.card_data import contains_pan
from payments.ids import new_id
from telemetry.logs import bind_context
from telemetry.logs import clear_context
from telemetry.metrics import http_request_seconds

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# One year, the usual HSTS preload minimum.
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class RequestContext:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        clear_context()
        bind_context(request_id=request_id)
        extra = [(b"x-request-id", request_id.encode())]
        if self.hsts:
            extra.append(_HSTS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        problem = _nul_in_path_or_query(scope) or _card_data_outside_the_body(scope)
        if problem is not None:
            await problem.response()(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = _text(value)
            # Echoed in every answer, logged and kept in the audit log: never a card number.
            if _REQUEST_ID.match(text) and not contains_pan(text):
                return text
    return new_id("req")


def _text(raw: bytes) -> str:
    """Header or query bytes as a client meant them: UTF-8 (fullwidth or Arabic-
    Indic digits are UTF-8 on the wire), else Latin-1, HTTP's old default."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _query_bytes(scope: Scope) -> bytes:
    query: bytes = scope.get("query_string", b"")
    return unquote_to_bytes(query.replace(b"+", b" "))


def _nul_in_path_or_query(scope: Scope) -> Problem | None:
    if "\x00" in scope["path"] or b"\x00" in _query_bytes(scope):
        return Problem("validation_error", "NUL characters are not accepted in the URL")
    return None


def _card_data_outside_the_body(scope: Scope) -> Problem | None:
    if contains_pan(_text(_query_bytes(scope))):
        return Problem(
            "raw_card_data_forbidden", "the query string carries what looks like a card number"
        )
    for name, value in scope["headers"]:
        if contains_pan(_text(value)):
            header = name.decode("latin-1")
            return Problem(
                "raw_card_data_forbidden",
                f"the {header} header carries what looks like a card number",
            )
    return None


class RequestMetrics:
    """Each API request's duration, by route template (never the raw path:
    ids would make a series per payment), method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if isinstance(route, Mount):
                template += "/…"
            http_request_seconds.labels(template, scope["method"], str(status)).observe(
                time.perf_counter() - began
            )
