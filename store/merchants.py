"""Merchants: the gateway's tenants. Their keys are in `store.keys`."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, Connection


def ensure_merchant(conn: Connection[Any], merchant_id: str, name: str) -> None:
    conn.execute(
        "INSERT INTO merchants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (merchant_id, name),
    )


async def merchant_exists(conn: AsyncConnection[Any], merchant_id: str) -> bool:
    cursor = await conn.execute("SELECT 1 FROM merchants WHERE id = %s", (merchant_id,))
    return await cursor.fetchone() is not None
