"""Connections for callers outside the store, checked as they are lent, with
psycopg's errors translated.

A pooled connection can be dead: Postgres restarted, or an operator
terminated its backend. Lending it would fail the request that gets it, so
each connection is checked on the way out, and a dead one is handed back
(the pool discards it and opens another) and the next one taken. The check
is free for a healthy connection: an idle connection's socket has nothing to
read unless the server spoke first, which it does only to say goodbye (a
FATAL before it closes) or to deliver a notification; only then does the
check cost a round trip (psycopg_pool's own `check_connection`).

Why not psycopg_pool's `check=` argument: between two failed checks it
waits with a backoff from 1 s, doubling, so after a restart with four dead
connections in the pool a request met its 5 s timeout (measured: a 503).
Here a dead connection costs no wait, only the next connection.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from store.errors import StoreUnavailable

_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


def _server_spoke(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


async def _lend(pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any]:
    # Every connection in the pool may be dead (a restart), and then one more.
    for _ in range(pool.max_size + 1):
        conn: AsyncConnection[Any] = await pool.getconn()
        if not _server_spoke(conn):
            return conn
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            await pool.putconn(conn)
            continue
        return conn
    raise StoreUnavailable("every pooled connection was dead")


def _lend_sync(pool: ConnectionPool[Any]) -> Connection[Any]:
    for _ in range(pool.max_size + 1):
        conn: Connection[Any] = pool.getconn()
        if not _server_spoke(conn):
            return conn
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            pool.putconn(conn)
            continue
        return conn
    raise StoreUnavailable("every pooled connection was dead")


@contextlib.asynccontextmanager
async def connection(pool: AsyncConnectionPool[Any]) -> AsyncIterator[AsyncConnection[Any]]:
    """A pooled connection in autocommit mode: reads cost one round trip, and
    writes open `conn.transaction()` explicitly."""
    try:
        conn = await _lend(pool)
        try:
            yield conn
        finally:
            await pool.putconn(conn)
    except _UNAVAILABLE as error:
        raise StoreUnavailable(str(error)) from error


@contextlib.contextmanager
def sync_connection(pool: ConnectionPool[Any]) -> Iterator[Connection[Any]]:
    try:
        conn = _lend_sync(pool)
        try:
            yield conn
        finally:
            pool.putconn(conn)
    except _UNAVAILABLE as error:
        raise StoreUnavailable(str(error)) from error
