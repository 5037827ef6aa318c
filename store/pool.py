"""Connection pools. Opened by the process that uses them, never at import.

Connections are checked when they are lent (`store.db.connection`), so a
Postgres restart costs no request that could have succeeded.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg import Connection
from psycopg_pool import AsyncConnectionPool
from psycopg_pool import ConnectionPool

# How paystream's connections show in pg_stat_activity.
APPLICATION_NAME = "paystream"


def _pool_options(min_size: int, max_size: int) -> dict[str, Any]:
    """What every pool is, async or not: opened by its caller, not on creation;
    its connections in autocommit (writes open their transactions explicitly,
    `store.db`), named as above."""
    return {
        "min_size": min_size,
        "max_size": max_size,
        "open": False,
        "kwargs": {"autocommit": True, "application_name": APPLICATION_NAME},
    }


async def open_async_pool(
    url: str, *, min_size: int = 2, max_size: int = 10
) -> AsyncConnectionPool:
    pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
        url,
        **_pool_options(min_size, max_size),
        # A request waiting longer than this for a connection is better answered 503.
        timeout=5.0,
    )
    await pool.open(wait=True, timeout=30.0)
    return pool


def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    pool: ConnectionPool[Connection] = ConnectionPool(
        url, **_pool_options(min_size, max_size), timeout=30.0
    )
    pool.open(wait=True, timeout=30.0)
    return pool
