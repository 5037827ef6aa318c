"""The refund endpoints: create (partial and repeated, never beyond the
capture, even when requests race), list a payment's refunds, read one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole, authenticate
from gateway.http import canonical_json, json_response, page, read_json_object, validate
from gateway.idempotency import Outcome, idempotent, request_fingerprint, validate_key
from gateway.openapi import Endpoint
from gateway.payments import locked_payment, nudge, refused
from gateway.problems import Problem
from gateway.schemas.payments import CreateRefundRequest, Refund, RefundList
from gateway.types import Services
from payments.errors import AmountTooLarge, DomainError
from payments.lifecycle import refund_amount
from payments.resources import refund_resource
from store.db import connection
from store.payments import get_payment
from store.refunds import create_refund, get_refund, list_refunds
from telemetry.logs import bind_context


async def refund_payment(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.REFUNDS_WRITE)
    key = validate_key(request.headers.get("idempotency-key"), required=True)
    services: Services = request.app.state.services
    document = await read_json_object(request, services.config.max_body_bytes, empty_allowed=True)
    command = validate(CreateRefundRequest, document)
    payment_id = request.path_params["paymentId"]
    bind_context(payment_id=payment_id)
    fingerprint = request_fingerprint("POST", request.url.path, canonical_json(document))

    async def work(conn: AsyncConnection[Any]) -> Outcome:
        # The payment row lock makes racing refunds take turns; the
        # reservation's CHECK in Postgres would stop them even without it.
        payment = await locked_payment(conn, principal.merchant_id, payment_id)
        try:
            amount = refund_amount(payment.state(), command.amount)
        except DomainError as error:
            return refused(error)
        created = await create_refund(conn, payment, amount, command.reason, datetime.now(UTC))
        if created is None:
            return refused(AmountTooLarge("the refundable amount was taken by another refund"))
        refund, operation_id = created
        body = orjson.dumps(refund_resource(refund))
        return Outcome(201, body, after_commit=(nudge(services, operation_id),))

    return await idempotent(request, principal, key, fingerprint, work)


async def payment_refunds(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_READ)
    payment_id = request.path_params["paymentId"]
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        if await get_payment(conn, principal.merchant_id, payment_id) is None:
            raise Problem("not_found", "no such payment")
        refunds = await list_refunds(conn, principal.merchant_id, payment_id)
    # A payment has few refunds (each at least one minor unit of its capture):
    # one page holds them all.
    return json_response(page(refunds, len(refunds), refund_resource, lambda r: r.id))


async def read_refund(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_READ)
    services: Services = request.app.state.services
    async with connection(services.pool) as conn:
        refund = await get_refund(conn, principal.merchant_id, request.path_params["refundId"])
    if refund is None:
        raise Problem("not_found", "no such refund")
    return json_response(refund_resource(refund))


ENDPOINTS = (
    Endpoint(
        "POST",
        "/payments/{paymentId}/refunds",
        refund_payment,
        "Refund a payment",
        "refunds",
        ok_status=201,
        response=Refund,
        roles=(MerchantRole.REFUNDS_WRITE,),
        body=CreateRefundRequest,
        idempotency="required",
        problems=("invalid_state", "amount_exceeds_available"),
    ),
    Endpoint(
        "GET",
        "/payments/{paymentId}/refunds",
        payment_refunds,
        "List a payment's refunds",
        "refunds",
        response=RefundList,
        roles=(MerchantRole.PAYMENTS_READ,),
    ),
    Endpoint(
        "GET",
        "/refunds/{refundId}",
        read_refund,
        "Get a refund",
        "refunds",
        response=Refund,
        roles=(MerchantRole.PAYMENTS_READ,),
    ),
)
