"""The console's routes, mounted at /console. They are not endpoints of the
merchant API: none of them is in `gateway.app.ENDPOINTS`, so none is in the
OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.routing import Mount
from starlette.routing import Route
from starlette.routing import Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from gateway.console import pages
from gateway.console import sign_in
from gateway.console import stats
from gateway.console import webhooks
from gateway.console.render import error_page
from gateway.console.session import PATH


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response = error_page(request, 404, "Not found", "There is no console page here.")
    await response(scope, receive, send)


_STATIC = Path(__file__).parent / "static"

ROUTES = [
    Route("/", pages.dashboard, methods=["GET"]),
    Route("/sign-in", sign_in.sign_in_form, methods=["GET"]),
    Route("/sign-in", sign_in.sign_in, methods=["POST"]),
    Route("/sign-out", sign_in.sign_out, methods=["POST"]),
    Route("/payments", pages.payments, methods=["GET"]),
    Route("/payments/{paymentId}", pages.payment_detail, methods=["GET"]),
    Route("/webhooks", webhooks.webhooks, methods=["GET"]),
    Route("/webhooks/deliveries/{deliveryId}/replay", webhooks.replay, methods=["POST"]),
    Route("/reconciliations", pages.reconciliations, methods=["GET"]),
    Route("/reconciliations/{reconciliationId}", pages.reconciliation_detail, methods=["GET"]),
    Route("/ledger", pages.ledger, methods=["GET"]),
    Route("/api/stats", stats.stats, methods=["GET"]),
    Mount("/static", StaticFiles(directory=_STATIC), name="console-static"),
]

CONSOLE = Mount(PATH, app=Router(ROUTES, default=_not_found), name="console")
