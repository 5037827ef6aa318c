"""Merchants and their API keys. Only an HMAC of each key is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from payments.ids import new_id
from store.rows import ApiKeyRow

KEY_PREFIX = "sk_"
# 32 random bytes: the key space of a 256-bit secret, as Stripe-style keys carry.
_KEY_BYTES = 32
_DISPLAY_PREFIX_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key of one merchant, with its roles."""

    key_id: str
    merchant_id: str
    roles: frozenset[str]


def hash_key(key: str, pepper: bytes) -> bytes:
    """HMAC-SHA256 under a server-side pepper: a leaked table is not a list of
    keys, and a fast hash is enough because keys are long random secrets."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def ensure_merchant(conn: Connection[Any], merchant_id: str, name: str) -> None:
    conn.execute(
        "INSERT INTO merchants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (merchant_id, name),
    )


def merchant_exists(conn: Connection[Any], merchant_id: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM merchants WHERE id = %s", (merchant_id,)).fetchone() is not None
    )


def create_key(
    conn: Connection[Any], merchant_id: str, roles: list[str], pepper: bytes
) -> tuple[ApiKeyRow, str]:
    """Create a key; returns its row and the key itself, shown this once."""
    key = generate_key()
    with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        cursor.execute(
            "INSERT INTO api_keys (id, merchant_id, key_hash, key_prefix, roles)"
            " VALUES (%s, %s, %s, %s, %s)"
            " RETURNING id, merchant_id, key_prefix, roles, created_at, revoked_at",
            (
                new_id("key"),
                merchant_id,
                hash_key(key, pepper),
                key[:_DISPLAY_PREFIX_LENGTH],
                roles,
            ),
        )
        row = cursor.fetchone()
    assert row is not None
    return row, key


def key_is_active(conn: Connection[Any], key: str, pepper: bytes) -> bool:
    row = conn.execute(
        "SELECT 1 FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key, pepper),),
    ).fetchone()
    return row is not None


async def find_principal(conn: AsyncConnection[Any], key: str, pepper: bytes) -> Principal | None:
    cursor = await conn.execute(
        "SELECT id, merchant_id, roles FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key, pepper),),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return Principal(key_id=row[0], merchant_id=row[1], roles=frozenset(row[2]))
