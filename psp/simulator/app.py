"""The simulator's HTTP API: a small, bank-like PSP.

POST /v1/payments                    authorize (and capture when asked); Idempotency-Key
POST /v1/payments/{id}/captures      capture, partial allowed; Idempotency-Key
POST /v1/payments/{id}/voids         void an authorization; Idempotency-Key
POST /v1/payments/{id}/refunds       refund, partial and repeated; Idempotency-Key
GET  /v1/payments?reference=         status inquiry by our reference
GET  /v1/refunds?reference=          refund inquiry by our reference
GET|POST /challenge/{id}             the 3-D Secure page a customer authenticates on
    GET  /v1/settlements                 the settlement batches (UTC dates)
    GET  /v1/settlements/{batch}         a batch's settlement report, CSV
    GET  /_admin/settlements/{batch}     the discrepancies that report carries on purpose
    PUT  /_admin/settlements/{batch}     pin a batch's report: served as sent, CSV, from then on
    GET  /_book                          the whole book, with its checks
GET|PATCH /_admin/faults             read or change the fault knobs

How an operation runs under the faults is `service`; the knobs are `knobs`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.responses import Response
from starlette.responses import StreamingResponse
from starlette.routing import Route

from psp.simulator.challenge import answer_challenge
from psp.simulator.challenge import show_challenge
from psp.simulator.knobs import KNOWN
from psp.simulator.knobs import change_knobs
from psp.simulator.knobs import describe_knobs
from psp.simulator.service import BATCH
from psp.simulator.service import DroppedResponse
from psp.simulator.service import Simulator
from psp.simulator.service import SimulatorConfig
from psp.simulator.service import error_response
from psp.simulator.service import json_response
from psp.simulator.settlement import build_report
from psp.simulator.settlement import render_csv


class _IncompleteResponseFilter(logging.Filter):
    """Dropped responses are on purpose; keep them out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _amount(payload: dict[str, Any], name: str = "amount", *, required: bool = True) -> int | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _return_url(payload: dict[str, Any]) -> str | None:
    value = payload.get("returnUrl")
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError("returnUrl must be an http(s) URL")
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
                challenge_base=str(request.base_url),
                return_url=_return_url(p),
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
        if not BATCH.match(batch):
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
                unknown = set(changes) - KNOWN
                if unknown:
                    return error_response(400, "unknown_knob", f"unknown knobs: {sorted(unknown)}")
                change_knobs(sim, changes)
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as error:
                return error_response(400, "invalid_request", str(error))
        return json_response(describe_knobs(sim))

    async def challenge(request: Request) -> Response:
        if request.method == "POST":
            return await answer_challenge(sim, request)
        return await show_challenge(sim, request)

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
        Route("/challenge/{charge_id}", challenge, methods=["GET", "POST"]),
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
