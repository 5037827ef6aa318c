"""The durable idempotency record: the truth when Redis has forgotten.

A record is written in the same transaction as the work it answers for, so it
exists exactly when that work was committed. An expired record is treated as
absent and overwritten by the next request with its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from store.statements import Statement
from store.statements import Steps
from store.statements import execute
from store.statements import fetch_one
from store.statements import fetch_value
from store.statements import store_function


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: bytes
    response_status: int
    response_payload: bytes


@store_function
def find_record(merchant_id: str, key: str) -> Statement[IdempotencyRecord | None]:
    return fetch_one(
        IdempotencyRecord,
        "SELECT request_hash, response_status, response_payload FROM idempotency_keys"
        " WHERE merchant_id = %s AND key = %s AND expires_at > now()",
        (merchant_id, key),
    )


@store_function
def save_record(
    merchant_id: str,
    key: str,
    *,
    request_hash: bytes,
    response_status: int,
    response_payload: bytes,
    retention: timedelta,
) -> Steps[bool]:
    """Save the response for a key; False when a live record already holds the
    key (the caller must roll back its work and answer from that record)."""
    saved = yield from fetch_value(
        """
        INSERT INTO idempotency_keys AS existing
            (merchant_id, key, request_hash, response_status, response_payload, expires_at)
        VALUES (%s, %s, %s, %s, %s, now() + %s)
        ON CONFLICT (merchant_id, key) DO UPDATE SET
            request_hash = EXCLUDED.request_hash,
            response_status = EXCLUDED.response_status,
            response_payload = EXCLUDED.response_payload,
            created_at = now(),
            expires_at = EXCLUDED.expires_at
        WHERE existing.expires_at <= now()
        RETURNING 1
        """,
        (merchant_id, key, request_hash, response_status, response_payload, retention),
    )
    return saved is not None


@store_function
def purge_expired(*, batch: int = 10_000) -> Statement[int]:
    """Delete a batch of expired records (the reaper); returns how many."""
    return execute(
        "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT %s))",
        (batch,),
    )
