"""Rows as they come out of Postgres, loaded straight into typed records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.lifecycle import PaymentState
from payments.status import CaptureMethod, PaymentStatus


@dataclass(frozen=True, slots=True)
class PaymentRow:
    id: str
    merchant_id: str
    order_id: str
    amount: int
    currency: str
    status: str
    capture_method: str
    method_token: str
    description: str | None
    metadata: dict[str, Any]
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    psp_reference: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime
    refund_reserved_amount: int = 0
    pending_action: str | None = None
    requires_reconciliation: bool = False
    reconciliation_reason: str | None = None
    api_key_id: str | None = None

    def state(self) -> PaymentState:
        return PaymentState(
            status=PaymentStatus(self.status),
            capture_method=CaptureMethod(self.capture_method),
            amount=self.amount,
            authorized_amount=self.authorized_amount,
            captured_amount=self.captured_amount,
            refunded_amount=self.refunded_amount,
            refund_reserved_amount=self.refund_reserved_amount,
            pending_action=self.pending_action,
        )


PAYMENT_COLUMNS = (
    "id, merchant_id, order_id, amount, currency, status, capture_method, method_token,"
    " description, metadata, authorized_amount, captured_amount, refunded_amount,"
    " psp_reference, failure_code, failure_message, created_at, updated_at,"
    " refund_reserved_amount, pending_action, requires_reconciliation, reconciliation_reason,"
    " api_key_id"
)


@dataclass(frozen=True, slots=True)
class RefundRow:
    id: str
    payment_id: str
    merchant_id: str
    amount: int
    currency: str
    status: str
    reason: str | None
    psp_reference: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime


REFUND_COLUMNS = (
    "id, payment_id, merchant_id, amount, currency, status, reason, psp_reference,"
    " failure_code, failure_message, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class OperationRow:
    id: str
    payment_id: str
    merchant_id: str
    kind: str
    refund_id: str | None
    amount: int
    psp_key: str
    status: str
    attempts: int
    outcome_unknown: bool
    last_error: str | None
    janitor_checks: int
    next_check_at: datetime | None
    flagged_at: datetime | None
    created_at: datetime
    updated_at: datetime


OPERATION_COLUMNS = (
    "id, payment_id, merchant_id, kind, refund_id, amount, psp_key, status, attempts,"
    " outcome_unknown, last_error, janitor_checks, next_check_at, flagged_at, created_at,"
    " updated_at"
)


@dataclass(frozen=True, slots=True)
class PaymentEventRow:
    id: str
    payment_id: str
    type: str
    from_status: str | None
    to_status: str
    source: str
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: str
    merchant_id: str | None
    operator_id: str | None
    key_prefix: str
    roles: list[str]
    description: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: bytes
    response_status: int
    response_payload: bytes
