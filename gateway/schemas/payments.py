"""Payments, their refunds and their timeline."""

from __future__ import annotations

from typing import Annotated
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator
from pydantic import Field
from pydantic import StrictInt

from gateway.schemas.common import ApiModel
from gateway.schemas.common import Identifier
from payments.money import MAX_AMOUNT
from payments.money import is_currency
from payments.status import CaptureMethod
from payments.status import EventSource
from payments.status import PaymentStatus
from payments.status import RefundStatus


def _iso_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError("must be an ISO 4217 currency code in upper case, e.g. EUR")
    return code


Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="In minor units, e.g. cents")]
Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, examples=["EUR"], description="ISO 4217, upper case"),
    AfterValidator(_iso_currency),
]
MethodToken = Annotated[
    str,
    Field(
        min_length=3,
        max_length=255,
        pattern=r"^[A-Za-z0-9_\-]+$",
        examples=["tok_visa"],
        description="A payment method token from the PSP; raw card numbers are refused",
    ),
]


def _return_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    return url


ReturnUrl = Annotated[
    str,
    Field(
        min_length=10,
        max_length=2048,
        examples=["https://shop.example/orders/order-1/paid"],
        description=(
            "Where the customer comes back to after authenticating (3-D Secure), "
            "if the PSP asks them to"
        ),
    ),
    AfterValidator(_return_url),
]
# Stripe's metadata limits: 50 keys, keys up to 40 characters, values up to 500.
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], Annotated[str, Field(max_length=500)]],
    Field(max_length=50),
]


class CreatePaymentRequest(ApiModel):
    order_id: Identifier
    amount: Amount
    currency: Currency
    method_token: MethodToken
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    description: Annotated[str, Field(max_length=1000)] | None = None
    metadata: Metadata = Field(default_factory=dict)
    return_url: ReturnUrl | None = None


class CaptureRequest(ApiModel):
    amount: Amount | None = Field(
        None, description="Less than authorized captures part; the rest is released"
    )


class CancelRequest(ApiModel):
    """No fields: the body may be empty or {}."""


class ConfirmRequest(ApiModel):
    """No fields: the body may be empty or {}."""


class NextAction(ApiModel):
    type: Literal["redirect"]
    url: str | None = Field(
        description=(
            "The PSP's page where the customer authenticates; null where the PSP's own "
            "script shows it (Stripe without a returnUrl)"
        )
    )
    expires_at: str = Field(
        description="RFC 3339, UTC: past it paystream asks the PSP to give up on the customer"
    )


class CreateRefundRequest(ApiModel):
    amount: Amount | None = Field(None, description="Defaults to all that is left to refund")
    reason: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class ListPaymentsQuery(ApiModel):
    order_id: Identifier | None = None
    status: PaymentStatus | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    starting_after: Identifier | None = None


class Payment(ApiModel):
    payment_id: str = Field(examples=["pay_01jd2x6kq3r5t7v9w1y3z5b7c9"])
    order_id: str
    amount: int
    currency: str
    status: PaymentStatus = Field(
        description=(
            "PENDING → AUTHORIZED (manual capture) → CAPTURED; PENDING → CAPTURED (automatic); "
            "PENDING → FAILED; PENDING → REQUIRES_ACTION (the customer must authenticate: "
            "nextAction) → AUTHORIZED, CAPTURED or FAILED on the PSP's word; "
            "AUTHORIZED → CANCELED; CAPTURED → REFUNDED. Never back."
        )
    )
    capture_method: CaptureMethod
    description: str | None
    metadata: dict[str, str]
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    pending_refund_amount: int = Field(description="Refunds sent to the PSP, not yet confirmed")
    pending_action: Literal["capture", "cancel"] | None = Field(
        description="A capture or cancel asked for and not yet confirmed by the PSP"
    )
    requires_reconciliation: bool = Field(
        description="The PSP's word could not be had; settlement reconciliation will decide"
    )
    reconciliation_reason: str | None
    psp: str = Field(
        examples=["simulator"],
        description="The PSP that took the payment (chosen by the routing table), for life",
    )
    psp_reference: str | None
    return_url: str | None
    next_action: NextAction | None = Field(
        description="While REQUIRES_ACTION: what the customer must do before the PSP decides"
    )
    failure_code: str | None
    failure_message: str | None
    created_at: str = Field(description="RFC 3339, UTC")
    updated_at: str = Field(description="RFC 3339, UTC")


class PaymentList(ApiModel):
    data: list[Payment]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as startingAfter for the next page")


class Refund(ApiModel):
    refund_id: str = Field(examples=["re_01jd2x6kq3r5t7v9w1y3z5b7c9"])
    payment_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None
    psp_reference: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: str
    updated_at: str


class RefundList(ApiModel):
    data: list[Refund]
    has_more: bool
    next_cursor: str | None


class PaymentEvent(ApiModel):
    event_id: str
    type: str = Field(examples=["payment.captured"])
    from_status: PaymentStatus | None
    to_status: PaymentStatus
    source: EventSource
    detail: dict[str, Any]
    created_at: str


class PaymentEventList(ApiModel):
    data: list[PaymentEvent]
