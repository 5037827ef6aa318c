"""Every error the API can answer, as RFC 9457 problem+json with a stable code.

The catalogue below is the only place codes are defined; the OpenAPI document
lists it, and handlers raise `Problem(code, detail)`, `not_found(what)`, or a
domain error (`payments.errors`), answered by `refusal` under its own code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from payments.errors import DomainError
from payments.errors import OrderAlreadyExists

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    title: str


CATALOGUE: dict[str, ProblemType] = {
    "validation_error": ProblemType(400, "The request is not valid"),
    "idempotency_key_missing": ProblemType(400, "An Idempotency-Key header is required"),
    "idempotency_key_invalid": ProblemType(400, "The Idempotency-Key header is not valid"),
    "raw_card_data_forbidden": ProblemType(400, "Raw card data is not accepted; send a token"),
    "authentication_required": ProblemType(401, "An API key is required"),
    "invalid_api_key": ProblemType(401, "The API key is not valid"),
    "invalid_signature": ProblemType(401, "The webhook signature is not valid"),
    "insufficient_role": ProblemType(403, "The API key lacks the role for this operation"),
    "not_found": ProblemType(404, "No such resource"),
    "method_not_allowed": ProblemType(405, "Method not allowed on this resource"),
    "idempotency_key_in_use": ProblemType(409, "A request with this Idempotency-Key is in flight"),
    "order_already_exists": ProblemType(409, "A payment for this order id already exists"),
    "invalid_state": ProblemType(409, "The payment is not in a state that allows this"),
    "webhook_in_flight": ProblemType(409, "This webhook is being stored; retry shortly"),
    "payload_too_large": ProblemType(413, "The request body is too large"),
    "unsupported_media_type": ProblemType(415, "Send JSON with Content-Type: application/json"),
    "idempotency_key_reused": ProblemType(
        422, "This Idempotency-Key was used for a different request"
    ),
    "amount_exceeds_available": ProblemType(422, "The amount exceeds what is available"),
    "rate_limited": ProblemType(429, "Too many requests"),
    "card_testing_suspected": ProblemType(
        429, "Most recent authorizations with this key were declined"
    ),
    "internal_error": ProblemType(500, "Internal error"),
    "service_unavailable": ProblemType(503, "A backing service is unavailable; retry later"),
}


def problem_type_uri(code: str) -> str:
    return f"urn:paystream:problem:{code}"


class Problem(Exception):
    """Raise to answer with a problem. `extra` members are added to the body
    (RFC 9457 extension members), `headers` to the response."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"unknown problem code {code!r}")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def status(self) -> int:
        return CATALOGUE[self.code].status

    def body(self) -> bytes:
        problem_type = CATALOGUE[self.code]
        return orjson.dumps(
            {
                "type": problem_type_uri(self.code),
                "title": problem_type.title,
                "status": problem_type.status,
                "detail": self.detail,
                "code": self.code,
                **self.extra,
            }
        )

    def response(self) -> Response:
        return Response(
            self.body(), self.status, headers=self.headers, media_type=PROBLEM_MEDIA_TYPE
        )


def not_found(what: str) -> Problem:
    """No such object, or not the caller's: the two answer alike (404)."""
    return Problem("not_found", f"no such {what}")


def refusal(error: DomainError) -> Problem:
    """A business rule's no, answered under the code the rule carries."""
    if isinstance(error, OrderAlreadyExists):
        return Problem(error.code, error.message, paymentId=error.payment_id)
    return Problem(error.code, error.message)
