"""The simulator's HTTP API: a small, bank-like PSP.

POST /v1/payments                    authorize (and capture when asked); Idempotency-Key
POST /v1/payments/{id}/captures      capture, partial allowed; Idempotency-Key
POST /v1/payments/{id}/voids         void an authorization; Idempotency-Key
POST /v1/payments/{id}/refunds       refund, partial and repeated; Idempotency-Key
GET  /v1/payments?reference=         status inquiry by our reference
GET  /v1/refunds?reference=          refund inquiry by our reference
    GET  /v1/settlements                 the settlement batches (UTC dates)
    GET  /v1/settlements/{batch}         a batch's settlement report, CSV
    GET  /_admin/settlements/{batch}     the discrepancies that report carries on purpose
    PUT  /_admin/settlements/{batch}     pin a batch's report: served as sent, CSV, from then on
    GET  /_book                          the whole book, with its checks
GET|PATCH /_admin/faults             read or change the fault knobs
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from psp.simulator.book import Book, BookError, StoredResponse
from psp.simulator.faults import Fate, Faults, FaultSettings
from psp.simulator.settlement import SettlementKnobs, build_report, render_csv
from psp.simulator.webhooks import WebhookKnobs, WebhookSender
from telemetry.logs import bind_context, clear_context

logger = logging.getLogger("paystream.psp_simulator")

# Knob names on the admin API (camelCase, like the rest of the API) and in FaultSettings.
KNOBS = {
    "latencyMs": "latency_ms",
    "jitterMs": "jitter_ms",
    "errorRate": "error_rate",
    "timeoutRate": "timeout_rate",
    "lostResponseRate": "lost_response_rate",
    "hangMs": "hang_ms",
    "seed": "seed",
    "outages": "outages",
    "webhookOnlyRate": "webhook_only_rate",
    "webhookOnlyHoldMs": "webhook_only_hold_ms",
    "silentRate": "silent_rate",
    "silentHoldMs": "silent_hold_ms",
}
SETTLEMENT_KNOBS = {
    "settlementMissingRows": "missing_rows",
    "settlementExtraRows": "extra_rows",
    "settlementAmountOff": "amount_off",
    "settlementCurrencyOff": "currency_off",
    "settlementDuplicateRows": "duplicate_rows",
    "chargebackRate": "chargeback_rate",
}
WEBHOOK_KNOBS = {
    "webhookUrl": "url",
    "webhookDelayMs": "delay_ms",
    "webhookDuplicateRate": "duplicate_rate",
    "webhookReorderRate": "reorder_rate",
}
# A settlement batch is a UTC date; nothing else names a pinned report's file.
_BATCH = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Write-only: set by PATCH, never shown.
WEBHOOK_SECRET_KNOB = "webhookSecret"  # noqa: S105  (a knob name, not a secret)

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


class _IncompleteResponseFilter(logging.Filter):
    """Dropped responses are on purpose; keep them out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


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
        return path if _BATCH.match(batch) and path.exists() else None

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


def _change_knobs(sim: Simulator, changes: dict[str, Any]) -> None:
    fault_changes = {KNOBS[name]: value for name, value in changes.items() if name in KNOBS}
    hook_changes = {WEBHOOK_KNOBS[n]: value for n, value in changes.items() if n in WEBHOOK_KNOBS}
    if WEBHOOK_SECRET_KNOB in changes:
        hook_changes["secret"] = str(changes[WEBHOOK_SECRET_KNOB])
    settlement_changes = {
        SETTLEMENT_KNOBS[n]: value for n, value in changes.items() if n in SETTLEMENT_KNOBS
    }
    knobs = replace(sim.webhooks.knobs, **hook_changes)
    knobs.validate()
    settlement = replace(sim.settlement, **settlement_changes)
    settlement.validate()
    sim.faults.update(fault_changes)  # validates; raises before anything changes
    sim.webhooks.knobs = knobs
    sim.settlement = settlement
    if "seed" in fault_changes:
        sim.webhooks.reseed(fault_changes["seed"])
        sim.settlement.seed = fault_changes["seed"] or 0


def _amount(payload: dict[str, Any], name: str = "amount", *, required: bool = True) -> int | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def create_app(config: SimulatorConfig) -> Starlette:
    sim = Simulator(config)
    book = sim.book
    logging.getLogger("uvicorn.error").addFilter(_IncompleteResponseFilter())

    async def authorize(request: Request) -> Response | DroppedResponse:
        def run(p: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
            amount = _amount(p)
            assert amount is not None
            charge = book.authorize(
                reference=str(p["reference"]),
                amount=amount,
                currency=str(p["currency"]),
                token=str(p["token"]),
                capture=bool(p.get("capture", False)),
            )
            return 201, charge, f"payment.{charge['status']}"

        return await sim.operate(request, run)

    async def capture(request: Request) -> Response | DroppedResponse:
        charge_id = request.path_params["charge_id"]
        return await sim.operate(
            request,
            lambda p: (
                200,
                book.capture(charge_id, _amount(p, required=False)),
                "payment.captured",
            ),
        )

    async def void(request: Request) -> Response | DroppedResponse:
        charge_id = request.path_params["charge_id"]
        return await sim.operate(request, lambda p: (200, book.void(charge_id), "payment.voided"))

    async def refund(request: Request) -> Response | DroppedResponse:
        charge_id = request.path_params["charge_id"]

        def run(p: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
            amount = _amount(p)
            assert amount is not None
            refund = book.refund(charge_id, amount, str(p["reference"]))
            return 201, refund, f"refund.{refund['status']}"

        return await sim.operate(request, run)

    async def find_payments(request: Request) -> Response:
        return await inquiry(request, book.charges_for)

    async def find_refunds(request: Request) -> Response:
        return await inquiry(request, book.refunds_for)

    async def inquiry(request: Request, lookup: Callable[[str], list[dict[str, Any]]]) -> Response:
        if not sim.authorized(request):
            return error_response(401, "unauthorized", "missing or wrong API key")
        reference = request.query_params.get("reference")
        if not reference:
            return error_response(400, "invalid_request", "reference is required")
        if sim.faults.in_outage() or sim.hidden(reference):
            return error_response(503, "unavailable", "try again later")
        return json_response({"data": lookup(reference)})

    async def list_settlements(request: Request) -> Response:
        if not sim.authorized(request):
            return error_response(401, "unauthorized", "missing or wrong API key")
        return json_response({"data": [{"batch": batch} for batch in book.batches()]})

    async def settlement_report(request: Request) -> Response:
        if not sim.authorized(request):
            return error_response(401, "unauthorized", "missing or wrong API key")
        pinned = sim.pinned_report(request.path_params["batch"])
        if pinned is not None:
            return FileResponse(pinned, media_type="text/csv")
        report = build_report(book, request.path_params["batch"], sim.settlement)
        return StreamingResponse(render_csv(report), media_type="text/csv")

    async def pin_settlement_report(request: Request) -> Response:
        """The report a batch is to have, whatever the book says: streamed to a
        file as it arrives, so a million lines cost no memory."""
        batch = request.path_params["batch"]
        if not _BATCH.match(batch):
            return error_response(400, "invalid_request", "a batch is a date, YYYY-MM-DD")
        sim.pinned_reports.mkdir(exist_ok=True)
        path = sim.pinned_reports / f"{batch}.csv"
        size = 0
        with path.with_suffix(".part").open("wb") as handle:
            async for chunk in request.stream():
                handle.write(chunk)
                size += len(chunk)
        path.with_suffix(".part").rename(path)
        return json_response({"batch": batch, "bytes": size})

    async def settlement_discrepancies(request: Request) -> Response:
        report = build_report(book, request.path_params["batch"], sim.settlement)
        return json_response({"rows": len(report.rows), "discrepancies": report.discrepancies})

    async def read_book(request: Request) -> Response:
        return json_response(book.snapshot())

    async def faults(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                changes = orjson.loads(await request.body())
                known = {*KNOBS, *WEBHOOK_KNOBS, *SETTLEMENT_KNOBS, WEBHOOK_SECRET_KNOB}
                unknown = set(changes) - known
                if unknown:
                    return error_response(400, "unknown_knob", f"unknown knobs: {sorted(unknown)}")
                _change_knobs(sim, changes)
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as error:
                return error_response(400, "invalid_request", str(error))
        described = sim.faults.describe()
        knobs = {camel: described[snake] for camel, snake in KNOBS.items()}
        hooks = {
            camel: getattr(sim.webhooks.knobs, snake) for camel, snake in WEBHOOK_KNOBS.items()
        }
        hooks |= {
            camel: getattr(sim.settlement, snake) for camel, snake in SETTLEMENT_KNOBS.items()
        }
        drawn = {fate.value: sim.faults.drawn[fate] for fate in Fate}
        sender = sim.webhooks
        webhooks = {
            "sent": sender.sent,
            "duplicated": sender.duplicated,
            "reordered": sender.reordered,
        }
        return json_response({**knobs, **hooks, "drawn": drawn, "webhooks": webhooks})

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    routes = [
        Route("/v1/payments", authorize, methods=["POST"]),
        Route("/v1/payments", find_payments, methods=["GET"]),
        Route("/v1/payments/{charge_id}/captures", capture, methods=["POST"]),
        Route("/v1/payments/{charge_id}/voids", void, methods=["POST"]),
        Route("/v1/payments/{charge_id}/refunds", refund, methods=["POST"]),
        Route("/v1/refunds", find_refunds, methods=["GET"]),
        Route("/v1/settlements", list_settlements, methods=["GET"]),
        Route("/v1/settlements/{batch}", settlement_report, methods=["GET"]),
        Route("/_admin/settlements/{batch}", settlement_discrepancies, methods=["GET"]),
        Route("/_admin/settlements/{batch}", pin_settlement_report, methods=["PUT"]),
        Route("/_book", read_book, methods=["GET"]),
        Route("/_admin/faults", faults, methods=["GET", "PATCH"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sim.webhooks.close()
        book.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.simulator = sim
    return app
