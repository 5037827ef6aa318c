"""The payment endpoints: create, read, list and the timeline, capture and cancel."""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from functools import partial
from typing import Any
from typing import Literal
from typing import TypeVar

from gateway.auth import MerchantRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.endpoint import Handler
from gateway.http import listing
from gateway.http import page
from gateway.http import page_window
from gateway.problems import not_found
from gateway.schemas.payments import CancelRequest
from gateway.schemas.payments import CaptureRequest
from gateway.schemas.payments import ConfirmRequest
from gateway.schemas.payments import CreatePaymentRequest
from gateway.schemas.payments import ListPaymentsQuery
from gateway.schemas.payments import Payment
from gateway.schemas.payments import PaymentEventList
from gateway.schemas.payments import PaymentList
from payments.errors import OrderAlreadyExists
from payments.lifecycle import capture_amount
from payments.lifecycle import check_cancelable
from payments.lifecycle import check_confirmable
from payments.operations import OperationKind
from payments.records import PaymentRecord
from payments.records import TimelineEvent
from payments.resources import payment_resource
from payments.resources import timeline_event_resource
from payments.status import EventSource
from store.payment_changes import request_action
from store.payments import find_payment_id_for_order
from store.payments import get_payment
from store.payments import insert_payment
from store.payments import list_payments
from store.timeline import list_events
from telemetry.logs import bind_context
from telemetry.metrics import count_transitions

logger = logging.getLogger("paystream.gateway.payments")
B = TypeVar("B")


async def not_card_testing(call: Call[CreatePaymentRequest, None]) -> None:
    """429 while the key's recent authorizations look like card testing."""
    await call.services.limits.guard_new_payment(call.principal.key_id)


async def create_payment(call: Call[CreatePaymentRequest, None]) -> Answer:
    command, merchant_id = call.body, call.principal.merchant_id
    now = datetime.now(UTC)
    payment = PaymentRecord(
        merchant_id=merchant_id,
        order_id=command.order_id,
        amount=command.amount,
        currency=command.currency,
        capture_method=command.capture_method,
        method_token=command.method_token,
        # Its PSP for life: everything after this goes to that connector.
        psp=call.services.config.routing.choose(merchant_id, command.currency, command.amount),
        description=command.description,
        metadata=command.metadata,
        return_url=command.return_url,
        created_at=now,
        updated_at=now,
    )
    created = await insert_payment(call.conn, payment, call.principal.key_id)
    if created is None:
        existing = await find_payment_id_for_order(call.conn, payment.merchant_id, command.order_id)
        raise OrderAlreadyExists(command.order_id, existing)
    bind_context(payment_id=payment.id)
    after_requesting(call, created.operation_id, payment, created.event)
    call.after_commit(partial(_log_created, payment))
    return payment_resource(payment)


def after_requesting(
    call: Call[Any, Any], operation_id: str, payment: PaymentRecord, event: TimelineEvent
) -> None:
    """Once the call's transaction has committed: a worker takes up the PSP
    operation it asked for, and the payment's transition is counted."""
    call.after_commit(partial(call.services.work.nudge_operation, operation_id))
    call.after_commit(partial(_counted, payment, event))


async def _counted(payment: PaymentRecord, event: TimelineEvent) -> None:
    count_transitions(payment, [event])


async def _log_created(payment: PaymentRecord) -> None:
    logger.info("payment created: %d %s at %s", payment.amount, payment.currency, payment.psp)


async def named_payment(call: Call[Any, Any], *, for_update: bool = False) -> PaymentRecord:
    """The caller's payment that the path names; 404 (not stored) when there
    is none, whoever else it may belong to. With for_update, locked until the
    transaction ends."""
    merchant_id, payment_id = call.principal.merchant_id, call.path["paymentId"]
    payment = await get_payment(call.conn, merchant_id, payment_id, for_update=for_update)
    if payment is None:
        raise not_found("payment")
    return payment


async def capture_payment(call: Call[CaptureRequest, None]) -> Answer:
    payment = await named_payment(call, for_update=True)
    amount = capture_amount(payment.state(), call.body.amount)
    requested = await request_action(
        call.conn, payment, OperationKind.CAPTURE, amount, source=EventSource.API
    )
    after_requesting(call, requested.operation_id, payment, requested.event)
    return payment_resource(requested.payment)


async def cancel_payment(call: Call[CancelRequest, None]) -> Answer:
    payment = await named_payment(call, for_update=True)
    if payment.pending_action == "cancel":
        # Asked already: cancelling is idempotent by nature.
        return payment_resource(payment)
    check_cancelable(payment.state())
    requested = await request_action(
        call.conn, payment, OperationKind.VOID, payment.authorized_amount, source=EventSource.API
    )
    after_requesting(call, requested.operation_id, payment, requested.event)
    return payment_resource(requested.payment)


async def confirm_payment(call: Call[ConfirmRequest, None]) -> Answer:
    """The customer is back from authenticating: a worker asks the PSP how
    it ended and writes the answer (202; the payment moves once the PSP has
    said). Confirming twice is harmless: the second finds it decided."""
    payment = await named_payment(call, for_update=True)
    check_confirmable(payment.state())
    call.after_commit(partial(call.services.work.nudge_authentication, payment.id))
    return payment_resource(payment)


async def read_payment(call: Call[None, None]) -> Answer:
    return payment_resource(await named_payment(call))


async def list_payments_page(call: Call[None, ListPaymentsQuery]) -> Answer:
    query = call.query
    rows = await list_payments(
        call.conn,
        call.principal.merchant_id,
        order_id=query.order_id,
        status=query.status,
        **page_window(query),
    )
    return page(rows, query.limit, payment_resource, lambda row: row.id)


async def payment_timeline(call: Call[None, None]) -> Answer:
    payment = await named_payment(call)
    events = await list_events(call.conn, payment.merchant_id, payment.id)
    return listing(timeline_event_resource(event) for event in events)


def _payment_action(
    action: str,
    handler: Handler[B, None],
    summary: str,
    body: type[B],
    idempotency: Literal["required", "optional"],
    problems: tuple[str, ...] = ("invalid_state",),
) -> Endpoint[B, None]:
    """`POST /payments/{paymentId}/<action>`: what a merchant asks of its
    payment, answered 202 with the payment as it stands (the PSP decides later)."""
    return Endpoint(
        "POST",
        f"/payments/{{paymentId}}/{action}",
        handler,
        summary,
        "payments",
        ok_status=202,
        response=Payment,
        roles=(MerchantRole.PAYMENTS_WRITE,),
        body=body,
        idempotency=idempotency,
        problems=problems,
    )


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
            ("ConfirmPayment", "Confirm a payment", "paymentId", "/paymentId"),
            ("RefundPayment", "Refund a payment", "paymentId", "/paymentId"),
            ("ListRefunds", "List a payment's refunds", "paymentId", "/paymentId"),
        ),
        check=not_card_testing,
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
    _payment_action(
        "capture",
        capture_payment,
        "Capture a payment",
        CaptureRequest,
        "required",
        problems=("invalid_state", "amount_exceeds_available"),
    ),
    _payment_action("cancel", cancel_payment, "Cancel a payment", CancelRequest, "optional"),
    _payment_action("confirm", confirm_payment, "Confirm a payment", ConfirmRequest, "optional"),
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
