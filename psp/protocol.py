"""What paystream asks of a PSP and how every answer is classified.

A call ends in exactly one of four ways. `Answered` carries the PSP's view of
the payment (which may itself be a decline). `Rejected` is the PSP's word that
the request was refused and nothing happened. `Retryable` means the request
surely did not take effect (5xx, connection refused before sending). `Unknown`
means it may have taken effect (timeout, connection dropped after sending): the
caller must ask the PSP before deciding anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar, Union

T = TypeVar("T")


class PspPaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    UNKNOWN = "unknown"


class PspRefundStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PspPayment:
    psp_reference: str
    reference: str
    status: PspPaymentStatus
    amount: int
    currency: str
    authorized_amount: int
    captured_amount: int
    refunded_amount: int
    decline_code: str | None = None
    decline_message: str | None = None


@dataclass(frozen=True, slots=True)
class PspRefund:
    psp_reference: str
    reference: str
    payment_psp_reference: str
    status: PspRefundStatus
    amount: int
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class Answered(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Retryable:
    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """A status inquiry found no record: the request never reached the PSP's book."""


CallResult = Union[Answered[T], Rejected, Retryable, Unknown]  # noqa: UP007
InquiryResult = Union[Answered[T], NotFound, Retryable, Unknown]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    reference: str
    amount: int
    currency: str
    token: str
    capture: bool


class PaymentServiceProvider(Protocol):
    def authorize(
        self, request: AuthorizeRequest, *, idempotency_key: str
    ) -> CallResult[PspPayment]: ...

    def capture(
        self, psp_reference: str, amount: int, *, idempotency_key: str
    ) -> CallResult[PspPayment]: ...

    def void(self, psp_reference: str, *, idempotency_key: str) -> CallResult[PspPayment]: ...

    def refund(
        self, psp_reference: str, amount: int, reference: str, *, idempotency_key: str
    ) -> CallResult[PspRefund]: ...

    def find_payment(self, reference: str) -> InquiryResult[PspPayment]: ...

    def find_refund(self, reference: str) -> InquiryResult[PspRefund]: ...

    def settlement_report(self, batch: str) -> Iterator[bytes]:
        """A settlement batch's report (CSV), streamed. Raises ReportUnavailable."""
        ...


class ReportUnavailable(Exception):
    """The PSP could not hand over a settlement report now; try again later."""
