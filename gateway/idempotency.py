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
and a request that failed half-way rolled back, so its retry runs afresh. A
business rule's refusal (a `DomainError`) is an answer like any other: the
work that raised it rolls back, and the refusal is saved under the key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from starlette.responses import Response

from gateway.endpoint import AfterCommit
from gateway.http import encoded_response
from gateway.problems import Problem
from gateway.problems import refusal
from gateway.types import Services
from payments.card_data import contains_pan
from payments.errors import DomainError
from store.db import connection
from store.idempotency import find_record
from store.idempotency import save_record
from store.transactions import transaction_as

_MAX_KEY_LENGTH = 255
_HASH_SIZE = 32
# Clients should come back after the first request has had time to finish.
_RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer of a piece of work, and what to do once it is committed."""

    status: int
    body: bytes
    after_commit: Sequence[AfterCommit] = ()

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return encoded_response(self.status, self.body, headers)


@dataclass(frozen=True, slots=True)
class Work:
    """A write's part in its transaction, and who does it: the transaction is
    begun with its actor (`store.transactions.transaction_as`), so that the
    audit rows it writes name them."""

    actor: str
    request_id: str | None
    run: Callable[[AsyncConnection[Any]], Awaitable[Outcome]]


def idempotency_key(header: str | None, *, required: bool) -> str | None:
    """The Idempotency-Key header's value, if it is a usable one."""
    if header is None:
        if required:
            raise Problem("idempotency_key_missing", "this operation requires an Idempotency-Key")
        return None
    if not 1 <= len(header) <= _MAX_KEY_LENGTH or not header.isprintable() or not header.isascii():
        raise Problem(
            "idempotency_key_invalid", "an Idempotency-Key is 1 to 255 printable ASCII characters"
        )
    if contains_pan(header):
        # Keys are stored: one carrying a card number must never get that far.
        raise Problem("raw_card_data_forbidden", "the Idempotency-Key looks like a card number")
    return header


def request_fingerprint(method: str, path: str, canonical_body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical_body).digest()


# What Redis holds under a key: a marker, the request's fingerprint, then
# for a finished request its answer's status (three digits) and body.
_IN_FLIGHT, _ANSWERED = b"L", b"D"


def _in_flight(fingerprint: bytes) -> bytes:
    """A request's claim on its key; random, so only its owner releases it."""
    return _IN_FLIGHT + fingerprint + os.urandom(16)


def _answered(fingerprint: bytes, status: int, body: bytes) -> bytes:
    return _ANSWERED + fingerprint + b"%03d" % status + body


@dataclass(frozen=True, slots=True)
class _Held:
    """What Redis says of a key another request holds."""

    fingerprint: bytes
    answer: Outcome | None  # None while that request is in flight

    @classmethod
    def read(cls, value: bytes) -> _Held:
        fingerprint, rest = value[1 : 1 + _HASH_SIZE], value[1 + _HASH_SIZE :]
        if value[:1] == _IN_FLIGHT:
            return cls(fingerprint, None)
        return cls(fingerprint, Outcome(int(rest[:3]), rest[3:]))


def _in_use() -> Problem:
    return Problem(
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still being processed",
        headers={"Retry-After": _RETRY_AFTER_SECONDS},
    )


def _reused() -> Problem:
    return Problem(
        "idempotency_key_reused", "this Idempotency-Key was used for a different request"
    )


def _replay(status: int, body: bytes) -> Response:
    return encoded_response(status, body, {"Idempotent-Replayed": "true"})


class _AnsweredElsewhere(Exception):
    """A live record already holds the key: roll back and answer from it."""


class Idempotency:
    def __init__(self, services: Services) -> None:
        self._config = services.config
        self._pool = services.pool
        self._claims = services.claims

    async def run(self, merchant_id: str, key: str, fingerprint: bytes, work: Work) -> Response:
        """Run `work` once per key and request."""
        redis_key = f"idem:{merchant_id}:{key}"
        claim = _in_flight(fingerprint)
        held = await self._claims.claim(redis_key, claim, self._config.idempotency_lock_ms)
        if held is not None:
            return self._answer_from_cache(_Held.read(held), fingerprint)
        finished = False
        try:
            response = await self._run_in_postgres(merchant_id, key, fingerprint, work, redis_key)
            finished = True
            return response
        finally:
            if not finished:
                await self._claims.release(redis_key, claim)

    def _answer_from_cache(self, held: _Held, fingerprint: bytes) -> Response:
        if held.fingerprint != fingerprint:
            raise _reused()
        if held.answer is None:
            raise _in_use()
        return _replay(held.answer.status, held.answer.body)

    async def _run_in_postgres(
        self, merchant_id: str, key: str, fingerprint: bytes, work: Work, redis_key: str
    ) -> Response:
        async with connection(self._pool) as conn:
            try:
                try:
                    async with transaction_as(conn, work.actor, work.request_id):
                        outcome = await work.run(conn)
                        await self._save(conn, merchant_id, key, fingerprint, outcome)
                except DomainError as error:
                    # A business rule said no: what the work did rolls back,
                    # and the no is the answer, kept under the key like any other.
                    problem = refusal(error)
                    outcome = Outcome(problem.status, problem.body())
                    async with conn.transaction():
                        await self._save(conn, merchant_id, key, fingerprint, outcome)
            except _AnsweredElsewhere:
                record = await find_record(conn, merchant_id, key)
                if record is None:  # expired between the two statements
                    raise _in_use() from None
                await self._cache(
                    redis_key, record.request_hash, record.response_status, record.response_payload
                )
                if record.request_hash != fingerprint:
                    raise _reused() from None
                return _replay(record.response_status, record.response_payload)
        await self._cache(redis_key, fingerprint, outcome.status, outcome.body)
        for action in outcome.after_commit:
            await action()
        return outcome.response()

    async def _save(
        self,
        conn: AsyncConnection[Any],
        merchant_id: str,
        key: str,
        fingerprint: bytes,
        outcome: Outcome,
    ) -> None:
        saved = await save_record(
            conn,
            merchant_id,
            key,
            request_hash=fingerprint,
            response_status=outcome.status,
            response_payload=outcome.body,
            retention=self._config.idempotency_retention,
        )
        if not saved:
            raise _AnsweredElsewhere

    async def _cache(self, redis_key: str, fingerprint: bytes, status: int, body: bytes) -> None:
        retention_ms = int(self._config.idempotency_retention.total_seconds() * 1000)
        ttl = min(self._config.idempotency_cache_ms, retention_ms)
        await self._claims.settle(redis_key, _answered(fingerprint, status, body), ttl)
