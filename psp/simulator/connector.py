"""The simulator as a connector: its HTTP API (`psp.simulator.app`) called
with httpx, its Standard Webhooks callbacks verified and read, its
settlement reports streamed (they are paystream's CSV already).

Every call is classified by `psp.protocol`: whether the request can have
taken effect decides between Retryable and Unknown; what the simulator says
is read by `psp.simulator.mapping`, anything unexpected becoming UNKNOWN. Its
answers are untrusted input: a body that cannot be read is Unknown, never a
guess.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TypeVar
from urllib.parse import quote

import httpx
import orjson

from psp.observed import correlation_headers
from psp.observed import observed
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import CallResult
from psp.protocol import InquiryResult
from psp.protocol import NotFound
from psp.protocol import PspEvent
from psp.protocol import PspPayment
from psp.protocol import PspRefund
from psp.protocol import Rejected
from psp.protocol import ReportUnavailable
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.protocol import VerifiedWebhook
from psp.simulator.mapping import event_from_json
from psp.simulator.mapping import payment_from_json
from psp.simulator.mapping import refund_from_json
from psp.standard_webhooks import WebhookSecret
from psp.standard_webhooks import verify_signature

T = TypeVar("T")
NAME = "simulator"
# Answers that say "not now" rather than "no": retrying later is safe.
_RETRYABLE_STATUS_CODES = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class SimulatorClientConfig:
    base_url: str
    api_key: str
    # Connecting is fast on a healthy network; a PSP that takes longer is down.
    connect_timeout: float = 2.0
    # Card authorizations at real PSPs answer within a few seconds at p99;
    # Kill Bill gives its plugins 30 s. Past this we ask instead of waiting.
    read_timeout: float = 10.0
    # A CA bundle to trust, for a PSP on a private certificate (the local TLS stack).
    ca_file: str | None = None
    # The secrets its callbacks are signed with: none, and every callback is refused.
    webhook_secrets: tuple[WebhookSecret, ...] = ()


class SimulatorConnector:
    """`name` is "simulator"; another name serves a second simulator beside
    the first (tests route between two)."""

    def __init__(
        self,
        config: SimulatorClientConfig,
        *,
        name: str = NAME,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._name = name
        self._webhook_secrets = config.webhook_secrets
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

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        self._client.close()

    # --- calls -------------------------------------------------------------------

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
        if request.return_url is not None:
            body["returnUrl"] = request.return_url
        return self._call("authorize", "/v1/payments", body, idempotency_key, payment_from_json)

    def capture(
        self, psp_reference: str, amount: int, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        path = f"/v1/payments/{quote(psp_reference, safe='')}/captures"
        return self._call("capture", path, {"amount": amount}, idempotency_key, payment_from_json)

    def void(self, psp_reference: str, *, idempotency_key: str) -> CallResult[PspPayment]:
        path = f"/v1/payments/{quote(psp_reference, safe='')}/voids"
        return self._call("void", path, {}, idempotency_key, payment_from_json)

    def refund(
        self, psp_reference: str, amount: int, reference: str, *, idempotency_key: str
    ) -> CallResult[PspRefund]:
        path = f"/v1/payments/{quote(psp_reference, safe='')}/refunds"
        body = {"amount": amount, "reference": reference}
        return self._call("refund", path, body, idempotency_key, refund_from_json)

    # The simulator is asked by our reference alone: it keeps charges by it.
    def find_payment(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspPayment]:
        return self._inquire("find_payment", "/v1/payments", reference, payment_from_json)

    def find_refund(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspRefund]:
        return self._inquire("find_refund", "/v1/refunds", reference, refund_from_json)

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

    # --- callbacks ---------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> VerifiedWebhook:
        event_id = verify_signature(self._webhook_secrets, body, headers, datetime.now(UTC))
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            # The decoder's message can quote the body: say nothing of it.
            raise ValueError("the body is not valid JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise ValueError("a webhook is a JSON object with a type")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ValueError("a webhook carries its object in data")
        reference = data.get("reference")
        return VerifiedWebhook(
            event_id=event_id,
            event_type=payload["type"],
            payload=payload,
            reference=reference if isinstance(reference, str) else None,
        )

    def parse_webhook(self, payload: dict[str, Any]) -> PspEvent | None:
        return event_from_json(payload)

    # --- how a call goes -----------------------------------------------------------

    def _call(
        self,
        operation: str,
        path: str,
        body: dict[str, Any],
        idempotency_key: str,
        parse: Callable[[dict[str, Any]], T],
    ) -> CallResult[T]:
        return observed(
            self._name, operation, lambda: self._send(path, body, idempotency_key, parse)
        )

    def _send(
        self,
        path: str,
        body: dict[str, Any],
        idempotency_key: str,
        parse: Callable[[dict[str, Any]], T],
    ) -> CallResult[T]:
        try:
            response = self._client.post(
                path,
                json=body,
                headers={"Idempotency-Key": idempotency_key, **correlation_headers()},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            return Retryable(f"not sent: {type(error).__name__}")
        except httpx.TransportError as error:
            return Unknown(f"sent, no answer: {type(error).__name__}")
        return _classify(response, parse)

    def _inquire(
        self, operation: str, path: str, reference: str, parse: Callable[[dict[str, Any]], T]
    ) -> InquiryResult[T]:
        return observed(self._name, operation, lambda: self._ask(path, reference, parse))

    def _ask(
        self, path: str, reference: str, parse: Callable[[dict[str, Any]], T]
    ) -> InquiryResult[T]:
        try:
            response = self._client.get(
                path, params={"reference": reference}, headers=correlation_headers()
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


def _classify(response: httpx.Response, parse: Callable[[dict[str, Any]], T]) -> CallResult[T]:
    """The simulator's HTTP answers, mapped: what the status code says of
    whether the call took effect, and the error it names."""
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
