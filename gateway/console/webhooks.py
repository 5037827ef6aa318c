"""Webhooks in the console: the PSP callbacks about the merchant's payments,
the merchant's own deliveries, and a replay of a dead letter. Deliveries and
replays need the `admin` role, as in the API; a replay is the API's own store
call, audited under the signed-in key."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole
from gateway.console.render import error_page
from gateway.console.render import listing_page
from gateway.console.render import see_other
from gateway.console.session import PATH
from gateway.console.session import SignedIn
from gateway.console.session import console_page
from gateway.console.session import services_of
from payments.ids import is_id
from store.audit import acting
from store.console import merchant_inbox
from store.db import connection
from store.webhook_deliveries import list_deliveries
from store.webhook_deliveries import replay_delivery

PAGE_SIZE = 50
INBOX_SIZE = 50
DELIVERY_STATUSES = ("dead", "pending", "delivered")


@console_page(MerchantRole.PAYMENTS_READ)
async def webhooks(request: Request, signed_in: SignedIn) -> Response:
    services = services_of(request)
    merchant_id = signed_in.principal.merchant_id
    status = request.query_params.get("status", "")
    status = status if status in DELIVERY_STATUSES else ""
    cursor = request.query_params.get("starting_after", "")
    replayed = request.query_params.get("replayed", "")
    deliveries = None
    async with connection(services.pool) as conn:
        inbox = await merchant_inbox(conn, merchant_id, INBOX_SIZE)
        if signed_in.can(MerchantRole.ADMIN):
            deliveries = await list_deliveries(
                conn,
                merchant_id,
                status=status or None,
                endpoint_id=None,
                limit=PAGE_SIZE + 1,
                starting_after=cursor if is_id(cursor, "wd") else None,
            )
    flash = (
        f"Delivery {replayed} is queued again: the webhooks process sends it within"
        " moments. Reload to see its status."
        if is_id(replayed, "wd")
        else None
    )
    return listing_page(
        request,
        "webhooks.html",
        "deliveries",
        deliveries,
        PAGE_SIZE,
        inbox=inbox,
        status_filter=status,
        statuses=DELIVERY_STATUSES,
        flash=flash,
    )


@console_page(MerchantRole.ADMIN)
async def replay(request: Request, signed_in: SignedIn) -> Response:
    services = services_of(request)
    merchant_id, key_id = signed_in.principal.merchant_id, signed_in.principal.key_id
    async with acting(services.pool, key_id, request.state.request_id) as conn:
        delivery = await replay_delivery(conn, merchant_id, request.path_params["deliveryId"])
    if delivery is None:
        return error_page(request, 404, "No such delivery", "There is no delivery with this id.")
    return see_other(f"{PATH}/webhooks?replayed={delivery.id}")
