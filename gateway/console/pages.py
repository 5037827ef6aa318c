"""The console's read pages: the dashboard, payments (search and detail),
reconciliation runs and their breaks, and ledger balances. Each asks the
signed-in key for the role the API asks for the same data. A merchant's key
sees only its merchant (another merchant's object is a 404, as in the API);
an operator's key sees reconciliation runs and any merchant's ledger, and
none of the merchants' payment pages."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole
from gateway.auth import OperatorRole
from gateway.console.render import error_page
from gateway.console.render import listing_page
from gateway.console.render import page
from gateway.console.render import see_other
from gateway.console.session import PATH
from gateway.console.session import SignedIn
from gateway.console.session import console_page
from gateway.console.session import services_of
from payments.ids import is_id
from payments.reconciliation import LineClass
from payments.status import PaymentStatus
from store.db import connection
from store.keys import PrincipalKind
from store.ledger import balances
from store.ledger import entries
from store.merchants import merchant_exists
from store.payments import get_payment
from store.payments import list_payments
from store.reconciliation_runs import get_run
from store.reconciliation_runs import list_breaks
from store.reconciliation_runs import list_runs
from store.refunds import list_refunds
from store.timeline import list_events

PAGE_SIZE = 50
# Breaks are read a screen at a time; a run can have a million.
BREAKS_PAGE_SIZE = 200
BREAK_CLASSES = tuple(c.value for c in LineClass if c is not LineClass.RESOLVABLE)
_MAX_ORDER_ID = 255


@console_page(MerchantRole.PAYMENTS_READ, OperatorRole.RECONCILIATION)
async def dashboard(request: Request, signed_in: SignedIn) -> Response:
    if signed_in.principal.kind is PrincipalKind.OPERATOR:
        return see_other(f"{PATH}/reconciliations")  # the dashboard is a merchant's payments
    return page(request, "dashboard.html")


@dataclass
class PaymentSearch:
    """The search form as typed, and what it means; a field that cannot be
    understood is named in `errors` and left out of the search."""

    order_id: str = ""
    status: str = ""
    created_from: str = ""
    created_to: str = ""
    starting_after: str | None = None
    errors: list[str] = field(default_factory=list)

    def day(self, text: str, label: str) -> datetime | None:
        if not text:
            return None
        try:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        except ValueError:
            self.errors.append(f"{label} is not a date (YYYY-MM-DD)")
            return None


def read_search(request: Request) -> PaymentSearch:
    params = request.query_params
    search = PaymentSearch(
        order_id=params.get("order_id", "").strip(),
        status=params.get("status", ""),
        created_from=params.get("created_from", ""),
        created_to=params.get("created_to", ""),
    )
    if len(search.order_id) > _MAX_ORDER_ID:
        search.errors.append(f"an order id has at most {_MAX_ORDER_ID} characters")
        search.order_id = ""
    if search.status and search.status not in PaymentStatus.__members__:
        search.errors.append(f"{search.status!r} is not a status")
        search.status = ""
    cursor = params.get("starting_after", "")
    search.starting_after = cursor if is_id(cursor, "pay") else None
    return search


@console_page(MerchantRole.PAYMENTS_READ)
async def payments(request: Request, signed_in: SignedIn) -> Response:
    search = read_search(request)
    created_from = search.day(search.created_from, "From")
    created_to = search.day(search.created_to, "To")
    async with connection(services_of(request).pool) as conn:
        rows = await list_payments(
            conn,
            signed_in.principal.merchant_id,
            order_id=search.order_id or None,
            status=search.status or None,
            created_from=created_from,
            # The "to" day is included: up to the start of the next one.
            created_before=created_to + timedelta(days=1) if created_to else None,
            limit=PAGE_SIZE + 1,
            starting_after=search.starting_after,
        )
    return listing_page(
        request,
        "payments.html",
        "payments",
        rows,
        PAGE_SIZE,
        search=search,
        statuses=list(PaymentStatus),
    )


@console_page(MerchantRole.PAYMENTS_READ)
async def payment_detail(request: Request, signed_in: SignedIn) -> Response:
    merchant_id, payment_id = signed_in.principal.merchant_id, request.path_params["paymentId"]
    async with connection(services_of(request).pool) as conn:
        payment = await get_payment(conn, merchant_id, payment_id)
        if payment is None:
            return error_page(request, 404, "No such payment", "There is no payment with this id.")
        events = await list_events(conn, merchant_id, payment_id)
        refunds = await list_refunds(conn, merchant_id, payment_id)
        journal = (
            await entries(conn, merchant_id, payment_id=payment_id, limit=100, starting_after=None)
            if signed_in.can(MerchantRole.LEDGER_READ)
            else None
        )
    return page(
        request, "payment.html", payment=payment, events=events, refunds=refunds, journal=journal
    )


@console_page(OperatorRole.RECONCILIATION)
async def reconciliations(request: Request, signed_in: SignedIn) -> Response:
    async with connection(services_of(request).pool) as conn:
        runs = await list_runs(conn, 100)
    return page(request, "reconciliations.html", runs=runs)


@console_page(OperatorRole.RECONCILIATION)
async def reconciliation_detail(request: Request, signed_in: SignedIn) -> Response:
    run_id = request.path_params["reconciliationId"]
    class_ = request.query_params.get("class", "")
    class_ = class_ if class_ in BREAK_CLASSES else ""
    after = request.query_params.get("starting_after", "")
    async with connection(services_of(request).pool) as conn:
        run = await get_run(conn, run_id)
        if run is None:
            return error_page(
                request, 404, "No such reconciliation", "There is no run with this id."
            )
        breaks = await list_breaks(
            conn,
            run_id,
            class_=class_ or None,
            limit=BREAKS_PAGE_SIZE + 1,
            starting_after=int(after) if after.isdigit() and len(after) < 19 else None,
        )
    return listing_page(
        request,
        "reconciliation.html",
        "breaks",
        breaks,
        BREAKS_PAGE_SIZE,
        run=run,
        class_=class_,
        classes=BREAK_CLASSES,
    )


@console_page(MerchantRole.LEDGER_READ, OperatorRole.RECONCILIATION)
async def ledger(request: Request, signed_in: SignedIn) -> Response:
    """A merchant's own ledger; an operator names the merchant (`?merchant=`)."""
    merchant_id: str | None = request.query_params.get("merchant", "").strip()[:255] or None
    if signed_in.principal.kind is PrincipalKind.MERCHANT:
        merchant_id = signed_in.principal.merchant_id
    if merchant_id is None:
        return page(request, "ledger.html", merchant_id=None, by_currency={}, recent=[])
    async with connection(services_of(request).pool) as conn:
        if not await merchant_exists(conn, merchant_id):
            return error_page(
                request, 404, "No such merchant", "There is no merchant with this id."
            )
        rows = await balances(conn, merchant_id)
        recent = await entries(conn, merchant_id, payment_id=None, limit=25, starting_after=None)
    by_currency: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        by_currency.setdefault(row.currency, []).append((row.kind, row.balance))
    return page(
        request, "ledger.html", merchant_id=merchant_id, by_currency=by_currency, recent=recent
    )
