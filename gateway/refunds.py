"""The refund endpoints: create (partial and repeated, never beyond the
capture, even when requests race), list a payment's refunds, read one."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from gateway.auth import MerchantRole
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import page
from gateway.payments import after_requesting
from gateway.payments import named_payment
from gateway.problems import not_found
from gateway.schemas.payments import CreateRefundRequest
from gateway.schemas.payments import Refund
from gateway.schemas.payments import RefundList
from payments.errors import AmountTooLarge
from payments.lifecycle import refund_amount
from payments.resources import refund_resource
from store.refunds import create_refund
from store.refunds import get_refund
from store.refunds import list_refunds


async def refund_payment(call: Call[CreateRefundRequest, None]) -> Answer:
    # The payment row lock makes racing refunds take turns; the
    # reservation's CHECK in Postgres would stop them even without it.
    payment = await named_payment(call, for_update=True)
    amount = refund_amount(payment.state(), call.body.amount)
    created = await create_refund(call.conn, payment, amount, call.body.reason, datetime.now(UTC))
    if created is None:
        raise AmountTooLarge("the refundable amount was taken by another refund")
    refund, operation_id, event = created
    after_requesting(call, operation_id, payment, event)
    return refund_resource(refund)


async def payment_refunds(call: Call[None, None]) -> Answer:
    payment = await named_payment(call)
    refunds = await list_refunds(call.conn, payment.merchant_id, payment.id)
    # A payment has few refunds (each at least one minor unit of its capture):
    # one page holds them all.
    return page(refunds, len(refunds), refund_resource, lambda refund: refund.id)


async def read_refund(call: Call[None, None]) -> Answer:
    refund = await get_refund(call.conn, call.principal.merchant_id, call.path["refundId"])
    if refund is None:
        raise not_found("refund")
    return refund_resource(refund)


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
