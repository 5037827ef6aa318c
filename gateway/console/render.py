"""Console pages as HTML: the Jinja2 templates shipped in this package, the
filters they use, and the headers every page carries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

import orjson
from jinja2 import Environment
from jinja2 import PackageLoader
from jinja2 import StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.responses import RedirectResponse
from starlette.responses import Response

from gateway.http import split_page
from payments.money import Money

# Scripts, styles, images and requests from the console's own origin only: no
# inline script or style, no CDN, no framing (clickjacking), forms posted home.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show merchant data: no cache keeps them after sign-out.
    "Cache-Control": "no-store",
}


def money(amount: int, currency: str) -> str:
    """Minor units as the currency writes them: 1999 EUR -> 19.99 EUR."""
    try:
        shown = str(Money(abs(amount), currency))
    except ValueError:  # a currency or a size Money refuses: shown as stored
        return f"{amount} {currency}"
    return f"-{shown}" if amount < 0 else shown


def when(moment: datetime | None) -> str:
    """A time for people: in UTC, to the millisecond."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def as_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


_templates = Environment(
    loader=PackageLoader("gateway.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(money=money, when=when, as_json=as_json)


def page(
    request: Request,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("signed_in", getattr(request.state, "signed_in", None))
    context.setdefault("flash", None)
    html = _templates.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status, headers={**SECURITY_HEADERS, **(headers or {})})


def listing_page(
    request: Request,
    template: str,
    name: str,
    rows: Sequence[Any] | None,
    limit: int,
    **context: Any,
) -> HTMLResponse:
    """A page of a list: the first `limit` of the `limit + 1` rows fetched,
    as `name` (None stays None: a list the signed-in key may not see), and
    `next_after`, the id the next page starts after (None on the last page)."""
    shown, last = split_page(rows or [], limit)
    context[name] = None if rows is None else shown
    return page(request, template, next_after=last.id if last else None, **context)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return page(request, "error.html", status, title=title, detail=detail)


def see_other(location: str) -> Response:
    """After a form, or to the sign-in page: the browser GETs `location`."""
    return RedirectResponse(location, 303, headers={"Cache-Control": "no-store"})
