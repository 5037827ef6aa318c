"""The API's request and response models: camelCase JSON, unknown fields refused.

Requests are validated with these models. Responses are built by
`payments.resources`; the response models here document them in the OpenAPI
document, and a test keeps the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
)
from pydantic.alias_generators import to_camel

from gateway.auth import MERCHANT_ROLES, OPERATOR_ROLES
from payments.events import ALL_EVENTS, EVENT_TYPES
from payments.money import MAX_AMOUNT, is_currency
from payments.status import CaptureMethod, EventSource, PaymentStatus, RefundStatus


def _iso_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError("must be an ISO 4217 currency code in upper case, e.g. EUR")
    return code


# Cursors that are Postgres bigints: a larger one would be a 500 from the database.
BIGINT_MAX = 2**63 - 1


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="In minor units, e.g. cents")]
Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, examples=["EUR"], description="ISO 4217, upper case"),
    AfterValidator(_iso_currency),
]
# Order ids and tokens are the merchant's identifiers: printable, no spaces.
Identifier = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
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


class CaptureRequest(ApiModel):
    amount: Amount | None = Field(
        None, description="Less than authorized captures part; the rest is released"
    )


class CancelRequest(ApiModel):
    """No fields: the body may be empty or {}."""


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
    status: PaymentStatus
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
    psp_reference: str | None
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


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, with paystream's stable `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None


class WebhookReceipt(BaseModel):
    received: bool
    duplicate: bool


class Health(BaseModel):
    status: Literal["ok", "ready", "degraded", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


def _event_type(value: str) -> str:
    if value != ALL_EVENTS and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type; use '*' or one of {', '.join(sorted(EVENT_TYPES))}")
    return value


EventType = Annotated[str, AfterValidator(_event_type)]


class CreateWebhookEndpointRequest(ApiModel):
    url: Annotated[
        str, Field(min_length=8, max_length=2048, examples=["https://shop.example/hooks"])
    ]
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=32)] = Field(
        description="Event types to receive, or ['*'] for all"
    )


class RotateSecretRequest(ApiModel):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] | None = Field(
        None, description="How long the old secret also signs; defaults to the server's setting"
    )


class WebhookEndpoint(ApiModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    previous_secret_retires_at: str | None
    created_at: str


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="Shown once: verify deliveries with it (Standard Webhooks)")


class WebhookEndpointList(ApiModel):
    data: list[WebhookEndpoint]


class ListDeliveriesQuery(ApiModel):
    status: Literal["pending", "delivered", "dead"] | None = None
    endpoint_id: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    starting_after: str | None = None


class WebhookDelivery(ApiModel):
    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class WebhookDeliveryList(ApiModel):
    data: list[WebhookDelivery]
    has_more: bool
    next_cursor: str | None


class CreateReconciliationRequest(ApiModel):
    psp_batch: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-11-24"])] = (
        Field(description="Reconcile this settlement batch, fetched from the PSP")
    )


class Reconciliation(ApiModel):
    reconciliation_id: str
    status: Literal["pending", "running", "completed", "failed"]
    source: Literal["upload", "psp"]
    batch: str | None
    line_count: int
    counts: dict[str, int] = Field(
        description="Lines per class (matched, missing_internally, amount_mismatch,"
        " currency_mismatch, duplicate, unconfirmed), missing_at_psp items, and how many"
        " were resolved"
    )
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class ReconciliationList(ApiModel):
    data: list[Reconciliation]


class ListBreaksQuery(ApiModel):
    class_: (
        Literal[
            "missing_internally",
            "missing_at_psp",
            "amount_mismatch",
            "currency_mismatch",
            "duplicate",
            "unconfirmed",
        ]
        | None
    ) = Field(None, alias="class")
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    starting_after: Annotated[int, Field(ge=0, le=BIGINT_MAX)] | None = None


class ReconciliationBreak(ApiModel):
    break_id: int
    line: int | None = Field(
        description="Line of the report (the header is line 1); none for missing_at_psp"
    )
    class_: str = Field(alias="class")
    record_type: str
    reference: str
    psp_reference: str | None
    reason: str | None


class ReconciliationBreakList(ApiModel):
    data: list[ReconciliationBreak]
    has_more: bool
    next_cursor: int | None


class LedgerBalance(ApiModel):
    currency: str
    account: str
    balance: int = Field(description="Debits minus credits, in minor units")


class LedgerBalances(ApiModel):
    data: list[LedgerBalance]


class LedgerPosting(ApiModel):
    account: str
    amount: int = Field(description="A debit is positive, a credit negative")
    currency: str


class LedgerEntry(ApiModel):
    entry_id: str
    source_type: str
    source_id: str
    payment_id: str | None
    description: str
    created_at: str
    postings: list[LedgerPosting]


class LedgerEntryList(ApiModel):
    data: list[LedgerEntry]
    has_more: bool
    next_cursor: str | None


LedgerMerchant = Annotated[
    str,
    Field(
        max_length=255,
        description="Whose ledger: an operator names the merchant; a merchant key reads its own",
    ),
]


class LedgerQuery(ApiModel):
    merchant_id: LedgerMerchant | None = None


class ListEntriesQuery(ApiModel):
    merchant_id: LedgerMerchant | None = None
    payment_id: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    starting_after: str | None = None


def _merchant_role(value: str) -> str:
    if value not in MERCHANT_ROLES:
        whose = "an operator's role, not a merchant's" if value in OPERATOR_ROLES else "unknown"
        raise ValueError(f"{whose}; a merchant key holds only {', '.join(MERCHANT_ROLES)}")
    return value


def _operator_role(value: str) -> str:
    if value not in OPERATOR_ROLES:
        raise ValueError(f"not an operator's role; one of {', '.join(OPERATOR_ROLES)}")
    return value


MerchantRoleName = Annotated[str, AfterValidator(_merchant_role)]
OperatorRoleName = Annotated[str, AfterValidator(_operator_role)]


class CreateApiKeyRequest(ApiModel):
    roles: Annotated[
        list[MerchantRoleName], Field(min_length=1, max_length=len(MERCHANT_ROLES))
    ] = Field(description="Merchant roles only: a merchant key never holds an operator's")
    description: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class RotateApiKeyRequest(ApiModel):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = Field(
        0, description="How long the old key keeps working; 0 revokes it at once"
    )


class ApiKey(ApiModel):
    key_id: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    roles: list[str]
    description: str | None
    created_at: str
    revoked_at: str | None


class ApiKeyWithSecret(ApiKey):
    api_key: str = Field(description="Shown once; only its HMAC is stored")


class ApiKeyList(ApiModel):
    data: list[ApiKey]


class CreateOperatorRequest(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    roles: Annotated[
        list[OperatorRoleName], Field(min_length=1, max_length=len(OPERATOR_ROLES))
    ] = Field(description="The first key's roles: reconciliation, admin")


class Operator(ApiModel):
    operator_id: str
    name: str
    created_at: str
    keys: list[ApiKey] = Field(description="Its keys, revoked ones included; never the keys")


class CreatedOperator(ApiModel):
    operator_id: str
    name: str
    created_at: str
    key: ApiKeyWithSecret = Field(description="The operator's first key, shown once")


class OperatorList(ApiModel):
    data: list[Operator]


def _iso_datetime(value: Any) -> Any:
    # Pydantic would also read "0.5" as seconds since 1970; the API says ISO 8601.
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-24T12:00:00Z") from None
    return value


IsoDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_datetime),
    Field(examples=["2026-11-24T12:00:00Z"], description="ISO 8601, with a time zone"),
]


class ListAuditQuery(ApiModel):
    object_id: str | None = None
    action: str | None = None
    actor: str | None = None
    since: IsoDatetime | None = None
    until: IsoDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    starting_after: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | None = None


class AuditEntry(ApiModel):
    seq: int
    occurred_at: str
    actor: str = Field(description="A key id, or system:<role>")
    request_id: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditList(ApiModel):
    data: list[AuditEntry]
    has_more: bool
    next_cursor: int | None
