"""Merchants and their API keys. Only an HMAC of each key is ever stored; a
key is shown once, when it is made. Every change to keys is audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from payments.ids import new_id
from store.audit import record, record_async
from store.rows import ApiKeyRow

KEY_PREFIX = "sk_"
# 32 random bytes: the key space of a 256-bit secret, as Stripe-style keys carry.
_KEY_BYTES = 32
_DISPLAY_PREFIX_LENGTH = 12
_KEY_COLUMNS = "id, merchant_id, key_prefix, roles, description, created_at, revoked_at"
# A key works until its revocation time, which a rotation may set ahead.
_ACTIVE = "(revoked_at IS NULL OR revoked_at > now())"
_INSERT_KEY = (
    "INSERT INTO api_keys (id, merchant_id, key_hash, key_prefix, roles, description)"
    f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_KEY_COLUMNS}"
)
_REVOKE = (
    f"UPDATE api_keys SET revoked_at = now() + %s WHERE id = %s AND merchant_id = %s"
    f" AND {_ACTIVE} RETURNING {_KEY_COLUMNS}"
)


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


def key_summary(row: ApiKeyRow) -> dict[str, Any]:
    """What the audit log keeps of a key: never the key or its hash."""
    return {"keyId": row.id, "prefix": row.key_prefix, "roles": row.roles}


def _new_key_params(
    merchant_id: str, roles: list[str], pepper: bytes, description: str | None
) -> tuple[str, tuple[Any, ...]]:
    key = generate_key()
    params = (
        new_id("key"),
        merchant_id,
        hash_key(key, pepper),
        key[:_DISPLAY_PREFIX_LENGTH],
        roles,
        description,
    )
    return key, params


def ensure_merchant(conn: Connection[Any], merchant_id: str, name: str) -> None:
    conn.execute(
        "INSERT INTO merchants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (merchant_id, name),
    )


# --- sync: the CLI and the local stack -------------------------------------------


def create_key(
    conn: Connection[Any],
    merchant_id: str,
    roles: list[str],
    pepper: bytes,
    description: str | None = None,
) -> tuple[ApiKeyRow, str]:
    """Create a key; returns its row and the key itself, shown this once."""
    key, params = _new_key_params(merchant_id, roles, pepper, description)
    with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        cursor.execute(_INSERT_KEY, params)
        row = cursor.fetchone()
    assert row is not None
    record(
        conn,
        merchant_id=merchant_id,
        action="api_key.created",
        object_type="api_key",
        object_id=row.id,
        after=key_summary(row),
    )
    return row, key


def list_keys(conn: Connection[Any], merchant_id: str) -> list[ApiKeyRow]:
    with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        cursor.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE merchant_id = %s ORDER BY id",
            (merchant_id,),
        )
        return cursor.fetchall()


def revoke_key(
    conn: Connection[Any], merchant_id: str, key_id: str, grace: timedelta = timedelta(0)
) -> ApiKeyRow | None:
    with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        cursor.execute(_REVOKE, (grace, key_id, merchant_id))
        row = cursor.fetchone()
    if row is not None:
        record(
            conn,
            merchant_id=merchant_id,
            action="api_key.revoked",
            object_type="api_key",
            object_id=key_id,
            after={**key_summary(row), "revokedAt": str(row.revoked_at)},
        )
    return row


def key_is_active(conn: Connection[Any], key: str, pepper: bytes) -> bool:
    row = conn.execute(
        f"SELECT 1 FROM api_keys WHERE key_hash = %s AND {_ACTIVE}", (hash_key(key, pepper),)
    ).fetchone()
    return row is not None


# --- async: the API --------------------------------------------------------------


async def find_principal(conn: AsyncConnection[Any], key: str, pepper: bytes) -> Principal | None:
    return await _principal(conn, "key_hash", hash_key(key, pepper))


async def find_principal_by_key_id(conn: AsyncConnection[Any], key_id: str) -> Principal | None:
    """The key as it is now (the console's sessions hold its id, never the
    key): None once it is revoked or its grace is over."""
    return await _principal(conn, "id", key_id)


async def _principal(
    conn: AsyncConnection[Any], column: Literal["key_hash", "id"], value: str | bytes
) -> Principal | None:
    cursor = await conn.execute(
        f"SELECT id, merchant_id, roles FROM api_keys WHERE {column} = %s AND {_ACTIVE}",
        (value,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return Principal(key_id=row[0], merchant_id=row[1], roles=frozenset(row[2]))


async def create_key_async(
    conn: AsyncConnection[Any],
    merchant_id: str,
    roles: list[str],
    pepper: bytes,
    description: str | None = None,
) -> tuple[ApiKeyRow, str]:
    key, params = _new_key_params(merchant_id, roles, pepper, description)
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        await cursor.execute(_INSERT_KEY, params)
        row = await cursor.fetchone()
    assert row is not None
    await record_async(
        conn,
        merchant_id=merchant_id,
        action="api_key.created",
        object_type="api_key",
        object_id=row.id,
        after=key_summary(row),
    )
    return row, key


async def list_keys_async(conn: AsyncConnection[Any], merchant_id: str) -> list[ApiKeyRow]:
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        await cursor.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE merchant_id = %s ORDER BY id",
            (merchant_id,),
        )
        return await cursor.fetchall()


async def get_key_async(
    conn: AsyncConnection[Any], merchant_id: str, key_id: str
) -> ApiKeyRow | None:
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        await cursor.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = %s AND merchant_id = %s",
            (key_id, merchant_id),
        )
        return await cursor.fetchone()


async def revoke_key_async(
    conn: AsyncConnection[Any], merchant_id: str, key_id: str, grace: timedelta = timedelta(0)
) -> ApiKeyRow | None:
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        await cursor.execute(_REVOKE, (grace, key_id, merchant_id))
        row = await cursor.fetchone()
    if row is not None:
        await record_async(
            conn,
            merchant_id=merchant_id,
            action="api_key.revoked",
            object_type="api_key",
            object_id=key_id,
            after={**key_summary(row), "revokedAt": str(row.revoked_at)},
        )
    return row
