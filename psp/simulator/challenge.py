"""The simulator's 3-D Secure challenge: the page a customer asked to
authenticate is sent to (a charge's `nextActionUrl`).

GET  /challenge/{id}    the page: the amount, and Pass / Fail buttons
POST /challenge/{id}    the customer's answer (form field `outcome`: pass or
                        fail): the charge is approved or declined in the
                        book, its signed callback is sent, and the customer
                        goes back to the payment's return URL (303), if any

It stands for the issuer's page, so no fault knob touches it; only the
callback it sends goes through the webhook knobs like any other.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.responses import RedirectResponse
from starlette.responses import Response

from psp.simulator.book import BookError
from psp.simulator.service import Simulator

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3-D Secure</title></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>Confirm this payment</h1>
{body}
</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(body=body), status_code=status)


def _challenge(charge: dict[str, Any]) -> str:
    amount = f"{charge['amount']} {charge['currency']} (minor units)"
    return (
        f"<p>The PSP simulator asks you to authenticate a payment of"
        f" <strong>{html.escape(amount)}</strong>.</p>"
        '<form method="post">'
        '<button name="outcome" value="pass">Pass</button> '
        '<button name="outcome" value="fail">Fail</button>'
        "</form>"
    )


def _done(charge: dict[str, Any]) -> str:
    return f"<p>This payment is {html.escape(str(charge['status']))}. You may close this page.</p>"


async def show_challenge(sim: Simulator, request: Request) -> Response:
    try:
        charge = sim.book.charge(request.path_params["charge_id"])
    except BookError as error:
        return _page(f"<p>{html.escape(error.message)}</p>", error.status)
    if charge["status"] != "requires_action":
        return _page(_done(charge))
    return _page(_challenge(charge))


async def answer_challenge(sim: Simulator, request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    outcome = (form.get("outcome") or [""])[0]
    if outcome not in ("pass", "fail"):
        return _page("<p>Choose Pass or Fail.</p>", 400)
    try:
        charge = sim.book.complete_authentication(
            request.path_params["charge_id"], passed=outcome == "pass"
        )
    except BookError as error:
        return _page(f"<p>{html.escape(error.message)}</p>", error.status)
    sim.webhooks.emit(f"payment.{charge['status']}", charge)
    if charge["returnUrl"]:
        return RedirectResponse(charge["returnUrl"], status_code=303)
    return _page(_done(charge))
