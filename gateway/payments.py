"""The payment endpoints: create, read, list and the timeline."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import MerchantRole, authenticate
from gateway.http import (
    canonical_json,
    json_response,
    listing,
    page,
    read_json_object,
    validate,
    validate_query,
)
from gateway.idempotency import Outcome, idempotent, request_fingerprint, validate_key
from gateway.limits import Limits
from gateway.openapi import Endpoint
from gateway.problems import Problem
from gateway.schemas.payments import (
    CancelRequest,
    CaptureRequest,
    CreatePaymentRequest,
    ListPaymentsQuery,
    Payment,
    PaymentEventList,
    PaymentList,
)
from gateway.types import Services
from payments.errors import DomainError
from payments.lifecycle import capture_amount, check_cancelable
from payments.operations import OperationKind
from payments.resources import payment_resource, timeline_event_resource
from store.db import connection
from store.payments import (
    find_payment_id_for_order,
    get_payment,
    insert_payment,
    list_events,
    list_payments,
    new_payment,
    request_action,
)
from store.rows import PaymentRow
from telemetry.logs import bind_context

logger = logging.getLogger("paystream.gateway.payments")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def create_payment(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_WRITE)
    key = validate_key(request.headers.get("idempotency-key"), required=True)
    assert key is not None
    services = _services(request)
    document = await read_json_object(request, services.config.max_body_bytes)
    command = validate(CreatePaymentRequest, document)
    limits: Limits = request.app.state.limits
    await limits.guard_new_payment(principal.key_id)
    fingerprint = request_fingerprint("POST", request.url.path, canonical_json(document))

    async def work(conn: AsyncConnection[Any]) -> Outcome:
        payment = new_payment(
            merchant_id=principal.merchant_id,
            order_id=command.order_id,
            amount=command.amount,
            currency=command.currency,
            capture_method=command.capture_method,
            method_token=command.method_token,
            description=command.description,
            metadata=command.metadata,
            now=datetime.now(UTC),
        )
        operation_id = await insert_payment(conn, payment, principal.key_id)
        if operation_id is not None:
            bind_context(payment_id=payment.id)
            body = orjson.dumps(payment_resource(payment))
            return Outcome(201, body, after_commit=(nudge(services, operation_id),))
        existing = await find_payment_id_for_order(conn, principal.merchant_id, command.order_id)
        problem = Problem(
            "order_already_exists",
            f"order {command.order_id!r} already has payment {existing}",
            paymentId=existing,
        )
        return Outcome(problem.status, problem.body())

    response = await idempotent(request, principal, key, fingerprint, work)
    if response.status_code == 201 and "idempotent-replayed" not in response.headers:
        logger.info("payment created: %d %s", command.amount, command.currency)
    return response


def nudge(services: Services, operation_id: str) -> Callable[[], Awaitable[None]]:
    return lambda: services.work.nudge_operation(operation_id)


def refused(error: DomainError) -> Outcome:
    """A business rule said no: answered, and stored under the key like any answer."""
    problem = Problem(error.code, error.message)
    return Outcome(problem.status, problem.body())


async def locked_payment(
    conn: AsyncConnection[Any], merchant_id: str, payment_id: str
) -> PaymentRow:
    """The merchant's payment, locked until the transaction ends; 404 (not
    stored) when there is none, whoever else it may belong to."""
    payment = await get_payment(conn, merchant_id, payment_id, for_update=True)
    if payment is None:
        raise Problem("not_found", "no such payment")
    return payment


async def capture_payment(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_WRITE)
    key = validate_key(request.headers.get("idempotency-key"), required=True)
    services = _services(request)
    document = await read_json_object(request, services.config.max_body_bytes, empty_allowed=True)
    command = validate(CaptureRequest, document)
    payment_id = request.path_params["paymentId"]
    bind_context(payment_id=payment_id)
    fingerprint = request_fingerprint("POST", request.url.path, canonical_json(document))

    async def work(conn: AsyncConnection[Any]) -> Outcome:
        payment = await locked_payment(conn, principal.merchant_id, payment_id)
        try:
            amount = capture_amount(payment.state(), command.amount)
        except DomainError as error:
            return refused(error)
        updated, operation_id = await request_action(conn, payment, OperationKind.CAPTURE, amount)
        body = orjson.dumps(payment_resource(updated))
        return Outcome(202, body, after_commit=(nudge(services, operation_id),))

    return await idempotent(request, principal, key, fingerprint, work)


async def cancel_payment(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_WRITE)
    key = validate_key(request.headers.get("idempotency-key"), required=False)
    services = _services(request)
    document = await read_json_object(request, services.config.max_body_bytes, empty_allowed=True)
    validate(CancelRequest, document)
    payment_id = request.path_params["paymentId"]
    bind_context(payment_id=payment_id)
    fingerprint = request_fingerprint("POST", request.url.path, canonical_json(document))

    async def work(conn: AsyncConnection[Any]) -> Outcome:
        payment = await locked_payment(conn, principal.merchant_id, payment_id)
        if payment.pending_action == "cancel":
            # Asked already: cancelling is idempotent by nature.
            return Outcome(202, orjson.dumps(payment_resource(payment)))
        try:
            check_cancelable(payment.state())
        except DomainError as error:
            return refused(error)
        updated, operation_id = await request_action(
            conn, payment, OperationKind.VOID, payment.authorized_amount
        )
        body = orjson.dumps(payment_resource(updated))
        return Outcome(202, body, after_commit=(nudge(services, operation_id),))

    return await idempotent(request, principal, key, fingerprint, work)


async def read_payment(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_READ)
    async with connection(_services(request).pool) as conn:
        payment = await get_payment(conn, principal.merchant_id, request.path_params["paymentId"])
    if payment is None:
        raise Problem("not_found", "no such payment")
    return json_response(payment_resource(payment))


async def list_payments_page(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_READ)
    query = validate_query(ListPaymentsQuery, request)
    async with connection(_services(request).pool) as conn:
        rows = await list_payments(
            conn,
            principal.merchant_id,
            limit=query.limit + 1,
            order_id=query.order_id,
            status=query.status,
            starting_after=query.starting_after,
        )
    return json_response(page(rows, query.limit, payment_resource, lambda row: row.id))


async def payment_timeline(request: Request) -> Response:
    principal = await authenticate(request, MerchantRole.PAYMENTS_READ)
    payment_id = request.path_params["paymentId"]
    bind_context(payment_id=payment_id)
    async with connection(_services(request).pool) as conn:
        payment = await get_payment(conn, principal.merchant_id, payment_id)
        if payment is None:
            raise Problem("not_found", "no such payment")
        events = await list_events(conn, principal.merchant_id, payment_id)
    return json_response(listing(timeline_event_resource(event) for event in events))


ENDPOINTS = (
    Endpoint(
        "POST",
        "/payments",
        create_payment,
        "Create a payment",
        "payments",
        ok_status=201,
        response=Payment,
        roles=(MerchantRole.PAYMENTS_WRITE,),
        body=CreatePaymentRequest,
        idempotency="required",
        problems=("order_already_exists", "card_testing_suspected"),
        links=(
            ("GetPayment", "Get a payment", "paymentId", "/paymentId"),
            ("GetTimeline", "Get a payment's timeline", "paymentId", "/paymentId"),
            ("CapturePayment", "Capture a payment", "paymentId", "/paymentId"),
            ("CancelPayment", "Cancel a payment", "paymentId", "/paymentId"),
            ("RefundPayment", "Refund a payment", "paymentId", "/paymentId"),
            ("ListRefunds", "List a payment's refunds", "paymentId", "/paymentId"),
        ),
    ),
    Endpoint(
        "GET",
        "/payments",
        list_payments_page,
        "List payments",
        "payments",
        response=PaymentList,
        roles=(MerchantRole.PAYMENTS_READ,),
        query=ListPaymentsQuery,
    ),
    Endpoint(
        "GET",
        "/payments/{paymentId}",
        read_payment,
        "Get a payment",
        "payments",
        response=Payment,
        roles=(MerchantRole.PAYMENTS_READ,),
    ),
    Endpoint(
        "POST",
        "/payments/{paymentId}/capture",
        capture_payment,
        "Capture a payment",
        "payments",
        ok_status=202,
        response=Payment,
        roles=(MerchantRole.PAYMENTS_WRITE,),
        body=CaptureRequest,
        idempotency="required",
        problems=("invalid_state", "amount_exceeds_available"),
    ),
    Endpoint(
        "POST",
        "/payments/{paymentId}/cancel",
        cancel_payment,
        "Cancel a payment",
        "payments",
        ok_status=202,
        response=Payment,
        roles=(MerchantRole.PAYMENTS_WRITE,),
        body=CancelRequest,
        idempotency="optional",
        problems=("invalid_state",),
    ),
    Endpoint(
        "GET",
        "/payments/{paymentId}/events",
        payment_timeline,
        "Get a payment's timeline",
        "payments",
        response=PaymentEventList,
        roles=(MerchantRole.PAYMENTS_READ,),
    ),
)
