"""The connector boundary: what paystream asks of a PSP, and how every answer
is classified. Every PSP (the simulator, Stripe) is a `Connector`; a payment
keeps the connector that took it for life.

A call ends in exactly one of four ways. `Answered` carries the PSP's view of
the payment (which may itself be a decline). `Rejected` is the PSP's word that
the request was refused and nothing happened. `Retryable` means the request
surely did not take effect (5xx, connection refused before sending). `Unknown`
means it may have taken effect (timeout, connection dropped after sending): the
caller must ask the PSP before deciding anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from typing import Generic
from typing import Protocol
from typing import TypeVar
from typing import Union

T = TypeVar("T")


class PspPaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    # The PSP asks the customer to authenticate (3-D Secure): see `next_action_url`.
    REQUIRES_ACTION = "requires_action"
    # Anything the connector cannot read for sure: nothing is decided on it.
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
    # Where to send the customer to authenticate, while REQUIRES_ACTION.
    next_action_url: str | None = None


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
    reference: str  # our payment id, for inquiries by our reference
    amount: int
    currency: str
    token: str  # the merchant's payment method token at this PSP
    capture: bool  # capture at once (automatic) or only authorize (manual)
    # Where the customer comes back after authenticating, if the PSP asks them to.
    return_url: str | None = None


# A webhook's news: the payment or the refund it tells of, read as the PSP's
# view of it (as a status inquiry would answer).
PspEvent = PspPayment | PspRefund


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """A callback whose signature held: its id at the PSP (the dedup key), its
    type, and its payload, kept as received for the worker to parse; and our
    reference, when the callback names one (kept beside it, to find it by)."""

    event_id: str
    event_type: str
    payload: dict[str, Any]
    reference: str | None = None


class WebhookRejected(Exception):
    """A callback's signature or timestamp does not verify: nothing of it is kept."""


class Connector(Protocol):
    """One PSP. Each maps its statuses and errors to ours in one place, and
    anything it cannot read for sure is Unknown (or UNKNOWN), never a guess."""

    @property
    def name(self) -> str:
        """How payments, routes, webhooks (`/webhooks/{name}`) and metrics name it."""
        ...

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

    def find_payment(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspPayment]:
        """A status inquiry by our reference (and the PSP's, when known)."""
        ...

    def find_refund(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspRefund]: ...

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> VerifiedWebhook:
        """Check a callback's signature and freshness, then read it as an
        event: WebhookRejected when the signature does not hold (401, nothing
        kept), ValueError when it holds over a body that is not an event of
        this PSP's (400, nothing kept; the message never quotes the body)."""
        ...

    def parse_webhook(self, payload: dict[str, Any]) -> PspEvent | None:
        """What a verified callback says; None for an event not acted on,
        ValueError when it is malformed (untrusted input)."""
        ...

    def settlement_report(self, batch: str) -> Iterator[bytes]:
        """A settlement batch's report, streamed as paystream's settlement CSV
        (`batch,date,type,psp_reference,reference,payment_reference,gross,fee,
        net,currency`), however the PSP keeps it. Raises ReportUnavailable."""
        ...


class UnknownConnector(LookupError):
    """No connector of that name is configured here."""


@dataclass(frozen=True, slots=True)
class Connectors:
    """The PSPs this deployment talks to, by name."""

    by_name: Mapping[str, Connector]

    def __getitem__(self, name: str) -> Connector:
        try:
            return self.by_name[name]
        except KeyError:
            raise UnknownConnector(f"no PSP connector named {name!r} is configured") from None

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def names(self) -> list[str]:
        return sorted(self.by_name)


class ReportUnavailable(Exception):
    """The PSP could not hand over a settlement report now; try again later."""
