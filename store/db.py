"""Connections for callers outside the store, with psycopg's errors translated."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from store.errors import StoreUnavailable

_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


@contextlib.asynccontextmanager
async def connection(pool: AsyncConnectionPool[Any]) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection in autocommit mode: reads cost one round trip, and
    writes open `conn.transaction()` explicitly."""
    try:
        async with pool.connection() as conn:
            yield conn
    except _UNAVAILABLE as error:
        raise StoreUnavailable(str(error)) from error


@contextlib.contextmanager
def sync_connection(pool: ConnectionPool[Any]) -> Iterator[Connection[Any]]:
    try:
        with pool.connection() as conn:
            yield conn
    except _UNAVAILABLE as error:
        raise StoreUnavailable(str(error)) from error
