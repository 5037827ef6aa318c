"""The simulator as a service: its book, its fault knobs and its webhook
sender, and how it runs one idempotent operation under those knobs (an answer,
a hang, a dropped connection, or a silence only the webhook breaks)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from psp.simulator.book import Book
from psp.simulator.book import BookError
from psp.simulator.book import StoredResponse
from psp.simulator.faults import Fate
from psp.simulator.faults import Faults
from psp.simulator.faults import FaultSettings
from psp.simulator.settlement import SettlementKnobs
from psp.simulator.webhooks import WebhookKnobs
from psp.simulator.webhooks import WebhookSender
from telemetry.logs import bind_context
from telemetry.logs import clear_context

logger = logging.getLogger("paystream.psp_simulator")

# A settlement batch is a UTC date; nothing else names a pinned report's file.
BATCH = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# An operation: what it answers, and the webhook event that tells of it.
Operation = Callable[[dict[str, Any]], tuple[int, dict[str, Any], str | None]]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    book_path: str
    api_key: str
    faults: FaultSettings
    webhooks: WebhookKnobs = field(default_factory=WebhookKnobs)
    settlement: SettlementKnobs = field(default_factory=SettlementKnobs)
    # A CA bundle to trust when calling the gateway's webhook URL over HTTPS.
    ca_file: str | None = None


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


class DroppedResponse:
    """Starts an answer and hangs up half-way: the client sees the connection
    drop after its request was sent, which is what a lost response looks like."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.book = Book(config.book_path)
        self.faults = Faults(config.faults)
        self.webhooks = WebhookSender(
            config.webhooks, seed=config.faults.seed, ca_file=config.ca_file
        )
        self.settlement = config.settlement
        self._in_flight: set[str] = set()
        # Idempotency keys and references the API keeps quiet about, until when.
        self._hidden: dict[str, float] = {}
        # Reports pinned by PUT /_admin/settlements/{batch}, served in place of the book's.
        self.pinned_reports = Path(config.book_path).parent / "pinned-settlements"

    def pinned_report(self, batch: str) -> Path | None:
        """The report pinned for `batch`, if any (a benchmark's million lines)."""
        path = self.pinned_reports / f"{batch}.csv"
        return path if BATCH.match(batch) and path.exists() else None

    def authorized(self, request: Request) -> bool:
        supplied = request.headers.get("authorization", "")
        return hmac.compare_digest(supplied.encode(), f"Bearer {self.config.api_key}".encode())

    def hidden(self, name: str) -> bool:
        until = self._hidden.get(name)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._hidden[name]
        return False

    def hide(self, names: list[str], hold_ms: int) -> None:
        until = time.monotonic() + hold_ms / 1000
        for name in names:
            self._hidden[name] = until

    async def operate(self, request: Request, operation: Operation) -> Response | DroppedResponse:
        """Run one idempotent operation under the fault knobs."""
        if not self.authorized(request):
            return error_response(401, "unauthorized", "missing or wrong API key")
        clear_context()
        bind_context(
            request_id=request.headers.get("x-request-id"),
            payment_id=request.headers.get("x-payment-id"),
        )
        key = request.headers.get("idempotency-key")
        if not key:
            return error_response(400, "idempotency_key_missing", "Idempotency-Key is required")
        raw = await request.body()
        try:
            payload = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            return error_response(400, "invalid_request", "the body is not JSON")
        if not isinstance(payload, dict):
            return error_response(400, "invalid_request", "the body must be a JSON object")
        request_hash = hashlib.sha256(
            request.url.path.encode() + orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        if self.hidden(key):
            return error_response(503, "unavailable", "try again later")
        stored = self.book.stored_response(key)
        if stored is not None:
            if stored.request_hash != request_hash:
                return error_response(422, "idempotency_key_reused", "key used for another request")
            return Response(stored.body, stored.status_code, media_type="application/json")
        if key in self._in_flight:
            return error_response(
                409, "idempotency_key_in_use", "a request with this key is running"
            )
        self._in_flight.add(key)
        try:
            return await self._apply(key, request_hash, payload, operation)
        finally:
            self._in_flight.discard(key)

    async def _apply(
        self,
        key: str,
        request_hash: str,
        payload: dict[str, Any],
        operation: Operation,
    ) -> Response | DroppedResponse:
        fate, latency = self.faults.draw()
        if latency:
            await asyncio.sleep(latency)
        if fate is Fate.OUTAGE:
            return error_response(503, "outage", "the PSP is down")
        if fate is Fate.ERROR:
            return error_response(500, "internal_error", "the PSP failed; nothing was done")
        if fate is Fate.TIMEOUT:
            await asyncio.sleep(self.faults.settings.hang_ms / 1000)
            return error_response(504, "timeout", "the PSP gave up; nothing was done")
        event_type = None
        try:
            status, body, event_type = operation(payload)
        except BookError as error:
            status, body = error.status, {"code": error.code, "message": error.message}
        except (KeyError, TypeError, ValueError) as error:
            status, body = 400, {"code": "invalid_request", "message": f"bad field: {error}"}
        encoded = orjson.dumps(body)
        self.book.store_response(key, StoredResponse(request_hash, status, encoded))
        logger.info("booked: %d %s, fate %s", status, event_type or body.get("code"), fate.value)
        if event_type is not None and fate is not Fate.SILENT:
            self.webhooks.emit(event_type, body)
        if fate is Fate.LOST_RESPONSE:
            return DroppedResponse()
        if fate in (Fate.WEBHOOK_ONLY, Fate.SILENT):
            knobs = self.faults.settings
            hold = knobs.webhook_only_hold_ms if fate is Fate.WEBHOOK_ONLY else knobs.silent_hold_ms
            self.hide([key, str(body.get("reference"))], hold)
            await asyncio.sleep(knobs.hang_ms / 1000)
            return error_response(504, "timeout", "the PSP gave up answering")
        return Response(encoded, status, media_type="application/json")
