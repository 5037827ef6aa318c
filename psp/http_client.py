"""The HTTP adapter for the PSP (the simulator speaks this API).

Every call is classified by `psp.protocol`: whether the request can have taken
effect decides between Retryable and Unknown, and the PSP's statuses are mapped
explicitly, anything unexpected becoming UNKNOWN. PSP answers are untrusted
input: a malformed body is Unknown, never a guess.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from opentelemetry.trace import SpanKind

from psp.protocol import (
    Answered,
    AuthorizeRequest,
    CallResult,
    InquiryResult,
    NotFound,
    PspPayment,
    PspPaymentStatus,
    PspRefund,
    PspRefundStatus,
    Rejected,
    ReportUnavailable,
    Retryable,
    Unknown,
)
from telemetry import tracing
from telemetry.logs import context
from telemetry.metrics import psp_call_seconds, timed

T = TypeVar("T")
R = TypeVar("R")

_PAYMENT_STATUSES = {
    "authorized": PspPaymentStatus.AUTHORIZED,
    "captured": PspPaymentStatus.CAPTURED,
    "declined": PspPaymentStatus.DECLINED,
    "voided": PspPaymentStatus.VOIDED,
}
_REFUND_STATUSES = {"succeeded": PspRefundStatus.SUCCEEDED, "failed": PspRefundStatus.FAILED}
# Answers that say "not now" rather than "no": retrying later is safe.
_RETRYABLE_STATUS_CODES = frozenset({408, 409, 425, 429})
_OUTCOMES: dict[type, str] = {
    Answered: "answered",
    Rejected: "rejected",
    Retryable: "retryable",
    Unknown: "unknown",
    NotFound: "not_found",
}


@dataclass(frozen=True, slots=True)
class PspClientConfig:
    base_url: str
    api_key: str
    # Connecting is fast on a healthy network; a PSP that takes longer is down.
    connect_timeout: float = 2.0
    # Card authorizations at real PSPs answer within a few seconds at p99;
    # Kill Bill gives its plugins 30 s. Past this we ask instead of waiting.
    read_timeout: float = 10.0
    # A CA bundle to trust, for a PSP on a private certificate (the local TLS stack).
    ca_file: str | None = None


def payment_from_json(body: dict[str, Any]) -> PspPayment:
    return PspPayment(
        psp_reference=str(body["id"]),
        reference=str(body["reference"]),
        status=_PAYMENT_STATUSES.get(str(body.get("status")), PspPaymentStatus.UNKNOWN),
        amount=int(body["amount"]),
        currency=str(body["currency"]),
        authorized_amount=int(body.get("authorizedAmount") or 0),
        captured_amount=int(body.get("capturedAmount") or 0),
        refunded_amount=int(body.get("refundedAmount") or 0),
        decline_code=body.get("declineCode"),
        decline_message=body.get("declineMessage"),
    )


def refund_from_json(body: dict[str, Any]) -> PspRefund:
    return PspRefund(
        psp_reference=str(body["id"]),
        reference=str(body["reference"]),
        payment_psp_reference=str(body["paymentId"]),
        status=_REFUND_STATUSES.get(str(body.get("status")), PspRefundStatus.UNKNOWN),
        amount=int(body["amount"]),
        failure_code=body.get("failureCode"),
    )


class HttpPsp:
    def __init__(self, config: PspClientConfig, *, transport: httpx.BaseTransport | None = None):
        verify: ssl.SSLContext | bool = True
        if config.ca_file:
            verify = ssl.create_default_context(cafile=config.ca_file)
        self._client = httpx.Client(
            base_url=config.base_url,
            headers={"Authorization": f"Bearer {config.api_key}"},
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout,
            ),
            verify=verify,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def authorize(
        self, request: AuthorizeRequest, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        body = {
            "reference": request.reference,
            "amount": request.amount,
            "currency": request.currency,
            "token": request.token,
            "capture": request.capture,
        }
        return _observed(
            "authorize",
            lambda: self._send("POST", "/v1/payments", body, idempotency_key, payment_from_json),
        )

    def capture(
        self, psp_reference: str, amount: int, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        path = f"/v1/payments/{psp_reference}/captures"
        body = {"amount": amount}
        return _observed(
            "capture", lambda: self._send("POST", path, body, idempotency_key, payment_from_json)
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> CallResult[PspPayment]:
        path = f"/v1/payments/{psp_reference}/voids"
        return _observed(
            "void", lambda: self._send("POST", path, {}, idempotency_key, payment_from_json)
        )

    def refund(
        self, psp_reference: str, amount: int, reference: str, *, idempotency_key: str
    ) -> CallResult[PspRefund]:
        path = f"/v1/payments/{psp_reference}/refunds"
        body = {"amount": amount, "reference": reference}
        return _observed(
            "refund", lambda: self._send("POST", path, body, idempotency_key, refund_from_json)
        )

    def find_payment(self, reference: str) -> InquiryResult[PspPayment]:
        return _observed(
            "find_payment", lambda: self._ask("/v1/payments", reference, payment_from_json)
        )

    def find_refund(self, reference: str) -> InquiryResult[PspRefund]:
        return _observed(
            "find_refund", lambda: self._ask("/v1/refunds", reference, refund_from_json)
        )

    def settlement_report(self, batch: str) -> Iterator[bytes]:
        try:
            # The batch may come from an uploaded report: never let it leave its segment.
            path = f"/v1/settlements/{quote(batch, safe='')}"
            with self._client.stream("GET", path) as response:
                if response.status_code != 200:
                    raise ReportUnavailable(f"the PSP answered {response.status_code}")
                yield from response.iter_bytes()
        except httpx.TransportError as error:
            raise ReportUnavailable(f"{type(error).__name__}: {error}") from None

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        idempotency_key: str,
        parse: Callable[[dict[str, Any]], T],
    ) -> CallResult[T]:
        try:
            response = self._client.request(
                method,
                path,
                json=body,
                headers={"Idempotency-Key": idempotency_key, **_correlation()},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            return Retryable(f"not sent: {type(error).__name__}")
        except httpx.TransportError as error:
            return Unknown(f"sent, no answer: {type(error).__name__}")
        return _classify(response, parse)

    def _ask(
        self, path: str, reference: str, parse: Callable[[dict[str, Any]], T]
    ) -> InquiryResult[T]:
        try:
            response = self._client.get(
                path, params={"reference": reference}, headers=_correlation()
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            return Retryable(f"not sent: {type(error).__name__}")
        except httpx.TransportError as error:
            return Unknown(f"no answer: {type(error).__name__}")
        if response.status_code != 200:
            return Retryable(f"inquiry answered {response.status_code}")
        try:
            items = response.json()["data"]
            if not items:
                return NotFound()
            return Answered(parse(items[0]))
        except (ValueError, KeyError, TypeError, IndexError):
            return Unknown("inquiry answer could not be read")


def _observed(operation: str, call: Callable[[], R]) -> R:
    """Make a PSP call in its span, timed in the latency histogram by its outcome."""
    with (
        tracing.span(f"psp {operation}", SpanKind.CLIENT, **{"psp.operation": operation}),
        timed(psp_call_seconds, operation=operation) as labels,
    ):
        result = call()
        labels["outcome"] = _OUTCOMES[type(result)]
    return result


def _correlation() -> dict[str, str]:
    """Headers that let the PSP's side of a call be found from ours: the
    request and payment it serves (from the log context), the trace."""
    bound = context()
    headers = tracing.inject()
    for name, header in (("request_id", "X-Request-Id"), ("payment_id", "X-Payment-Id")):
        if isinstance(value := bound.get(name), str):
            headers[header] = value
    return headers


def _classify(response: httpx.Response, parse: Callable[[dict[str, Any]], T]) -> CallResult[T]:
    status = response.status_code
    if status >= 500 or status in _RETRYABLE_STATUS_CODES:
        return Retryable(f"PSP answered {status}")
    if 200 <= status < 300:
        try:
            return Answered(parse(response.json()))
        except (ValueError, KeyError, TypeError):
            # It answered yes but we cannot read how: it may have taken effect.
            return Unknown(f"PSP answered {status} with a body that could not be read")
    try:
        error = response.json()
        return Rejected(str(error.get("code", "psp_rejected")), str(error.get("message", "")))
    except (ValueError, AttributeError):
        return Rejected("psp_rejected", f"PSP answered {status}")
