"""Platform operators: the people who run the gateway for every merchant.
They are made from the command line or by another operator, never by a
merchant, and each is made with its first key (`store.keys`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from payments.ids import new_id
from store.audit import record, record_async
from store.keys import KEY_COLUMNS, Owner, create_key, create_key_async
from store.rows import ApiKeyRow

# `op_` names the PSP operations already.
ID_PREFIX = "opr"
_INSERT = "INSERT INTO operators (id, name) VALUES (%s, %s) RETURNING id, name, created_at"
_LIST = "SELECT id, name, created_at FROM operators ORDER BY id"
_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE operator_id IS NOT NULL ORDER BY operator_id, id"
_KEY = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = %s AND operator_id IS NOT NULL"


@dataclass(frozen=True, slots=True)
class OperatorRow:
    id: str
    name: str
    created_at: datetime


def _created(row: OperatorRow) -> dict[str, Any]:
    return {
        "merchant_id": None,
        "action": "operator.created",
        "object_type": "operator",
        "object_id": row.id,
        "after": {"operatorId": row.id, "name": row.name},
    }


# --- sync: the CLI and the local stack -------------------------------------------


def create_operator(
    conn: Connection[Any], name: str, roles: list[str], pepper: bytes
) -> tuple[OperatorRow, ApiKeyRow, str]:
    """An operator and its first key; the key is returned this once."""
    with conn.cursor(row_factory=class_row(OperatorRow)) as cursor:
        cursor.execute(_INSERT, (new_id(ID_PREFIX), name))
        operator = cursor.fetchone()
    assert operator is not None
    record(conn, **_created(operator))
    row, key = create_key(conn, Owner.operator(operator.id), roles, pepper)
    return operator, row, key


def list_operators(conn: Connection[Any]) -> list[OperatorRow]:
    with conn.cursor(row_factory=class_row(OperatorRow)) as cursor:
        cursor.execute(_LIST)
        return cursor.fetchall()


def list_operator_keys(conn: Connection[Any]) -> list[ApiKeyRow]:
    with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        cursor.execute(_KEYS)
        return cursor.fetchall()


def get_operator_key(conn: Connection[Any], key_id: str) -> ApiKeyRow | None:
    with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        cursor.execute(_KEY, (key_id,))
        return cursor.fetchone()


# --- async: the API --------------------------------------------------------------


async def create_operator_async(
    conn: AsyncConnection[Any], name: str, roles: list[str], pepper: bytes
) -> tuple[OperatorRow, ApiKeyRow, str]:
    async with conn.cursor(row_factory=class_row(OperatorRow)) as cursor:
        await cursor.execute(_INSERT, (new_id(ID_PREFIX), name))
        operator = await cursor.fetchone()
    assert operator is not None
    await record_async(conn, **_created(operator))
    row, key = await create_key_async(conn, Owner.operator(operator.id), roles, pepper)
    return operator, row, key


async def list_operators_async(conn: AsyncConnection[Any]) -> list[OperatorRow]:
    async with conn.cursor(row_factory=class_row(OperatorRow)) as cursor:
        await cursor.execute(_LIST)
        return await cursor.fetchall()


async def list_operator_keys_async(conn: AsyncConnection[Any]) -> list[ApiKeyRow]:
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        await cursor.execute(_KEYS)
        return await cursor.fetchall()


async def get_operator_key_async(conn: AsyncConnection[Any], key_id: str) -> ApiKeyRow | None:
    async with conn.cursor(row_factory=class_row(ApiKeyRow)) as cursor:
        await cursor.execute(_KEY, (key_id,))
        return await cursor.fetchone()
