"""Each endpoint's declaration, enforced: one route per endpoint, and each
request on it goes the same way before its handler sees it.

    authenticate       the roles it declares (401, 403, 429), if any
    Idempotency-Key    read and checked where it declares idempotency
    body               within its size, JSON (or a declared CSV upload),
                       refused if card-like or too deep, validated into its model
    query              validated into its model
    check              what the endpoint declares to check before it takes
                       a connection (the card-testing guard, a URL's DNS)
    handler            given the `Call`, and for an endpoint with roles a
                       connection: a GET's to read, any other's in the one
                       transaction, audited as the caller's key, that the
                       router commits (with the idempotency record, where
                       there is a key) before anything after the commit runs

A public endpoint (no roles) gets no connection: health, metrics and the PSP
webhook ingress, which has its own signature and takes its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from psycopg import AsyncConnection
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import authenticate
from gateway.endpoint import AfterCommit
from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import canonical_json
from gateway.http import encoded_response
from gateway.http import limited_stream
from gateway.http import media_type
from gateway.http import read_json_object
from gateway.http import validate
from gateway.http import validate_query
from gateway.idempotency import Idempotency
from gateway.idempotency import Outcome
from gateway.idempotency import Work
from gateway.idempotency import idempotency_key
from gateway.idempotency import request_fingerprint
from gateway.problems import Problem
from gateway.types import GatewayConfig
from gateway.types import Services
from store.db import connection
from store.transactions import transaction_as
from telemetry.logs import bind_context


def build_routes(endpoints: Sequence[Endpoint[Any, Any]]) -> list[Route]:
    return [
        Route(e.path, _Dispatch(e).answer, methods=[e.method], name=e.summary) for e in endpoints
    ]


class _Dispatch:
    """One endpoint's route: the request read as declared, then its handler."""

    def __init__(self, endpoint: Endpoint[Any, Any]) -> None:
        self.endpoint = endpoint
        # A body whose every field is optional may be left out: none reads as {}.
        self.body_optional = endpoint.body is not None and _all_optional(endpoint.body)

    async def answer(self, request: Request) -> Response:
        endpoint = self.endpoint
        services: Services = request.app.state.services
        call, key, document = await self._read(request, services)
        if endpoint.check is not None:
            await endpoint.check(call)
        if call.caller is None:
            return self._response(await endpoint.handler(call))
        if endpoint.method == "GET":
            async with connection(services.pool) as conn:
                answer = await endpoint.handler(replace(call, connection=conn))
            return self._response(answer)
        work = self._work(call)
        if key is None:
            return await _in_transaction(services, work)
        fingerprint = request_fingerprint(
            request.method, request.url.path, canonical_json(document)
        )
        return await Idempotency(services).run(call.principal.merchant_id, key, fingerprint, work)

    async def _read(
        self, request: Request, services: Services
    ) -> tuple[Call[Any, Any], str | None, dict[str, Any]]:
        """The call as declared, its Idempotency-Key, and its body as sent."""
        endpoint = self.endpoint
        principal = None
        if endpoint.roles:
            principal = await authenticate(request, services, endpoint.roles)
        key = None
        if endpoint.idempotency is not None:
            header = request.headers.get("idempotency-key")
            key = idempotency_key(header, required=endpoint.idempotency == "required")
        document, body, upload = await self._read_body(request, services.config)
        query = validate_query(endpoint.query, request) if endpoint.query is not None else None
        call: Call[Any, Any] = Call(
            services=services,
            request_id=request.state.request_id,
            path=request.path_params,
            body=body,
            query=query,
            request=request,
            caller=principal,
            upload=upload,
        )
        if "paymentId" in call.path:  # on every line logged about the payment
            bind_context(payment_id=call.path["paymentId"])
        return call, key, document

    async def _read_body(
        self, request: Request, config: GatewayConfig
    ) -> tuple[dict[str, Any], BaseModel | None, AsyncIterator[bytes] | None]:
        """The body as a JSON document and as its model, or a CSV upload."""
        model = self.endpoint.body
        if model is None:
            return {}, None, None
        if self.endpoint.csv_upload:
            kind = media_type(request)
            if kind == "text/csv":
                return {}, None, limited_stream(request, config.max_report_bytes, "a report")
            if kind != "application/json":
                raise Problem(
                    "unsupported_media_type",
                    "upload a report as text/csv, or name a PSP batch with application/json",
                )
        document = await read_json_object(
            request, config.max_body_bytes, empty_allowed=self.body_optional
        )
        return document, validate(model, document), None

    def _work(self, call: Call[Any, Any]) -> Work:
        """The handler's part of a write, in the transaction it is given."""

        async def work(conn: AsyncConnection[Any]) -> Outcome:
            after_commit: list[AfterCommit] = []
            answer = await self.endpoint.handler(
                replace(call, connection=conn, _after_commit=after_commit)
            )
            assert not isinstance(answer, Response), "a write answers with its resource"
            body = b"" if answer is None else orjson.dumps(answer)
            return Outcome(self.endpoint.ok_status, body, tuple(after_commit))

        return Work(call.principal.key_id, call.request_id, work)

    def _response(self, answer: Answer) -> Response:
        if isinstance(answer, Response):
            return answer
        body = b"" if answer is None else orjson.dumps(answer)
        return encoded_response(self.endpoint.ok_status, body)


def _all_optional(model: type[Any]) -> bool:
    return issubclass(model, BaseModel) and not any(
        field.is_required() for field in model.model_fields.values()
    )


async def _in_transaction(services: Services, work: Work) -> Response:
    """A write without an Idempotency-Key: its work in one transaction, then
    what it asked to do after the commit."""
    async with (
        connection(services.pool) as conn,
        transaction_as(conn, work.actor, work.request_id),
    ):
        outcome = await work.run(conn)
    for action in outcome.after_commit:
        await action()
    return outcome.response()
