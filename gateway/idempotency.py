"""Idempotency keys (IETF draft-ietf-httpapi-idempotency-key-header, Stripe).

Redis is the fast path: one `SET NX PX` claims a key for the request in
flight, and the finished answer is cached there for quick replays. Postgres is
the truth: the answer is saved in the same transaction as the work it
describes, so after a Redis flush or outage a replay still finds it and never
does the work twice.

    same key, same request, finished   -> the first answer, Idempotent-Replayed: true
    same key, other request            -> 422 idempotency_key_reused
    same key, same request, in flight  -> 409 idempotency_key_in_use, Retry-After
    key past its retention             -> a new request

Only answers of committed work are saved: validation errors never get here,
and a request that failed half-way rolled back, so its retry runs afresh.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from gateway.claims import Claims
from gateway.problems import PROBLEM_MEDIA_TYPE, Problem
from gateway.types import Services
from payments.card_data import contains_pan
from store.audit import as_actor
from store.db import connection
from store.idempotency import find_record, save_record
from store.keys import Principal

_MAX_KEY_LENGTH = 255
_LOCK, _DONE = b"L", b"D"
_HASH_SIZE = 32
# Clients should come back after the first request has had time to finish.
_RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer of a piece of work, and what to do once it is committed."""

    status: int
    body: bytes
    after_commit: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)


Work = Callable[[AsyncConnection[Any]], Awaitable[Outcome]]


def validate_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise Problem("idempotency_key_missing", "this operation requires an Idempotency-Key")
        return None
    if not 1 <= len(key) <= _MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise Problem(
            "idempotency_key_invalid", "an Idempotency-Key is 1 to 255 printable ASCII characters"
        )
    if contains_pan(key):
        # Keys are stored: one carrying a card number must never get that far.
        raise Problem("raw_card_data_forbidden", "the Idempotency-Key looks like a card number")
    return key


def request_fingerprint(method: str, path: str, canonical_body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical_body).digest()


class _AnsweredElsewhere(Exception):
    """A live record already holds the key: roll back and answer from it."""


class Idempotency:
    def __init__(self, services: Services, claims: Claims) -> None:
        self._services = services
        self._claims = claims

    async def run(
        self,
        merchant_id: str,
        key: str | None,
        fingerprint: bytes,
        work: Work,
        *,
        actor: str,
        request_id: str | None,
    ) -> Response:
        """Run `work` once per key and request; without a key (where the
        operation allows none), just run it. Its changes are audited as `actor`."""
        audited = _audited(work, actor, request_id)
        if key is None:
            return await self._run_without_key(audited)
        redis_key = f"idem:{merchant_id}:{key}"
        lock = _LOCK + fingerprint + os.urandom(16)
        held = await self._claims.claim(redis_key, lock, self._services.config.idempotency_lock_ms)
        if held is not None:
            return self._answer_from_cache(held, fingerprint)
        finished = False
        try:
            response = await self._run_in_postgres(
                merchant_id, key, fingerprint, audited, redis_key
            )
            finished = True
            return response
        finally:
            if not finished:
                await self._claims.release(redis_key, lock)

    def _answer_from_cache(self, held: bytes, fingerprint: bytes) -> Response:
        if held[1 : 1 + _HASH_SIZE] != fingerprint:
            raise Problem(
                "idempotency_key_reused", "this Idempotency-Key was used for a different request"
            )
        if held[:1] == _LOCK:
            raise Problem(
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        status = int(held[1 + _HASH_SIZE : 4 + _HASH_SIZE])
        return _replay(status, held[4 + _HASH_SIZE :])

    async def _run_in_postgres(
        self, merchant_id: str, key: str, fingerprint: bytes, work: Work, redis_key: str
    ) -> Response:
        config = self._services.config
        async with connection(self._services.pool) as conn:
            try:
                async with conn.transaction():
                    outcome = await work(conn)
                    saved = await save_record(
                        conn,
                        merchant_id,
                        key,
                        request_hash=fingerprint,
                        response_status=outcome.status,
                        response_payload=outcome.body,
                        retention=config.idempotency_retention,
                    )
                    if not saved:
                        raise _AnsweredElsewhere
            except _AnsweredElsewhere:
                record = await find_record(conn, merchant_id, key)
                if record is None:  # expired between the two statements
                    raise Problem(
                        "idempotency_key_in_use",
                        "a request with this Idempotency-Key is still being processed",
                        headers={"Retry-After": _RETRY_AFTER_SECONDS},
                    ) from None
                await self._cache(
                    redis_key, record.request_hash, record.response_status, record.response_payload
                )
                if record.request_hash != fingerprint:
                    raise Problem(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request",
                    ) from None
                return _replay(record.response_status, record.response_payload)
        await self._cache(redis_key, fingerprint, outcome.status, outcome.body)
        for action in outcome.after_commit:
            await action()
        return _response(outcome.status, outcome.body)

    async def _run_without_key(self, work: Work) -> Response:
        async with connection(self._services.pool) as conn, conn.transaction():
            outcome = await work(conn)
        for action in outcome.after_commit:
            await action()
        return _response(outcome.status, outcome.body)

    async def _cache(self, redis_key: str, fingerprint: bytes, status: int, body: bytes) -> None:
        config = self._services.config
        retention_ms = int(config.idempotency_retention.total_seconds() * 1000)
        ttl = min(config.idempotency_cache_ms, retention_ms)
        await self._claims.settle(redis_key, _DONE + fingerprint + b"%03d" % status + body, ttl)


async def idempotent(
    request: Request, principal: Principal, key: str | None, fingerprint: bytes, work: Work
) -> Response:
    """Run a request's work under its Idempotency-Key, audited as its key."""
    idempotency: Idempotency = request.app.state.idempotency
    return await idempotency.run(
        principal.merchant_id,
        key,
        fingerprint,
        work,
        actor=principal.key_id,
        request_id=request.state.request_id,
    )


def _audited(work: Work, actor: str, request_id: str | None) -> Work:
    async def run(conn: AsyncConnection[Any]) -> Outcome:
        await as_actor(conn, actor, request_id)
        return await work(conn)

    return run


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    media_type = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    return Response(body, status, headers=headers, media_type=media_type)


def _replay(status: int, body: bytes) -> Response:
    return _response(status, body, {"Idempotent-Replayed": "true"})
