"""An endpoint is declared once, with what it takes, answers and requires; the
router (`gateway.router`) enforces the declaration and the OpenAPI document
(`gateway.openapi`) describes it. A handler gets a `Call`: the request as its
endpoint declared it, already checked, and nothing else of it to forget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar

from psycopg import AsyncConnection
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Role
from gateway.types import Services
from store.keys import Principal

B = TypeVar("B")
Q = TypeVar("Q")
AfterCommit = Callable[[], Awaitable[None]]
# What a handler answers: the resource, sent as JSON with the endpoint's
# success status, or None for no content; a Response only where the answer
# is not a resource (readiness's 503, the metrics' text).
Answer = dict[str, Any] | Response | None


@dataclass(frozen=True, slots=True)
class Call(Generic[B, Q]):
    """One request, as its endpoint declared it: the caller authenticated with
    one of its roles, the body and the query validated into their models, the
    path's parameters, and where the endpoint touches Postgres the connection
    to use: a write's is in the transaction the router commits (with the
    idempotency record, and audited as the caller's key)."""

    services: Services
    request_id: str
    path: Mapping[str, str]
    body: B
    query: Q
    # The request itself, for what no declaration covers: the PSP webhook's
    # signature over its raw body, the metrics' own token.
    request: Request
    caller: Principal | None = None
    connection: AsyncConnection[Any] | None = None
    # A CSV upload (text/csv where `csv_upload` allows it), streamed within its size limit.
    upload: AsyncIterator[bytes] | None = None
    # Where a write's actions after its commit go; None outside a write.
    _after_commit: list[AfterCommit] | None = None

    @property
    def principal(self) -> Principal:
        if self.caller is None:
            raise LookupError("a public endpoint has no caller")
        return self.caller

    @property
    def conn(self) -> AsyncConnection[Any]:
        if self.connection is None:
            raise LookupError("no connection: a public endpoint, or a check before one is taken")
        return self.connection

    def after_commit(self, action: AfterCommit) -> None:
        """Run `action` once the call's transaction has committed, and only
        then: a nudge to the workers about what the transaction made."""
        if self._after_commit is None:
            raise LookupError("only a write commits")
        self._after_commit.append(action)


Handler = Callable[[Call[B, Q]], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[B, Q]):
    method: str
    path: str
    handler: Handler[B, Q]
    summary: str
    tag: str
    ok_status: int = 200
    response: type[BaseModel] | None = None
    # The roles that pass it, each of one kind of key (merchant or operator);
    # none for a public route.
    roles: tuple[Role, ...] = ()
    body: type[B] | None = None
    query: type[Q] | None = None
    idempotency: Literal["required", "optional"] | None = None
    problems: tuple[str, ...] = ()
    # Also accepts a CSV upload (text/csv) in place of the JSON body.
    csv_upload: bool = False
    # OpenAPI links from the answer: (link name, the target's summary, its
    # parameter, the JSON pointer in this answer that fills it).
    links: tuple[tuple[str, str, str, str], ...] = ()
    # Answers besides the success and the problems: (status, model).
    other_responses: tuple[tuple[int, type[BaseModel]], ...] = ()
    # "webhook-signature" for callbacks signed the Standard Webhooks way.
    security: Literal["webhook-signature"] | None = None
    # Checked once the request is read and validated, before the endpoint
    # takes a connection: what waits on something else (Redis, DNS) never
    # holds one of the pool's connections meanwhile.
    check: Callable[[Call[B, Q]], Awaitable[None]] | None = None

    def problem_codes(self) -> list[str]:
        """Every problem this endpoint can answer, its own and the shared ones."""
        # A card number in any header or the query string is refused anywhere.
        codes = ["internal_error", "raw_card_data_forbidden"]
        if self.roles:
            codes += ["authentication_required", "invalid_api_key", "insufficient_role"]
            codes += ["rate_limited", "service_unavailable"]
        if "{" in self.path:
            codes.append("not_found")
        if self.body is not None:
            codes += [
                "validation_error",
                "raw_card_data_forbidden",
                "payload_too_large",
                "unsupported_media_type",
            ]
        if self.query is not None:
            codes += ["validation_error", "raw_card_data_forbidden"]
        if self.idempotency is not None:
            codes += ["idempotency_key_invalid", "idempotency_key_in_use", "idempotency_key_reused"]
        if self.idempotency == "required":
            codes.append("idempotency_key_missing")
        codes += self.problems
        return list(dict.fromkeys(codes))
