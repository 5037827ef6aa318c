"""Connection pools. Opened by the process that uses them, never at import.

Connections are checked when they are lent (`store.db.connection`), so a
Postgres restart costs no request that could have succeeded.
"""

from __future__ import annotations

from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool

# How paystream's connections show in pg_stat_activity.
APPLICATION_NAME = "paystream"
# Every pool's connections, async or not: in autocommit (writes open their
# transactions explicitly, `store.db`), named as above.
_CONNECTION = {"autocommit": True, "application_name": APPLICATION_NAME}


async def open_async_pool(
    url: str, *, min_size: int = 2, max_size: int = 10
) -> AsyncConnectionPool:
    pool: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs=_CONNECTION,
        # A request waiting longer than this for a connection is better answered 503.
        timeout=5.0,
    )
    await pool.open(wait=True, timeout=30.0)
    return pool


def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    pool: ConnectionPool[Connection] = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs=_CONNECTION,
        timeout=30.0,
    )
    pool.open(wait=True, timeout=30.0)
    return pool
