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
from collections.abc import AsyncIterator
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from contextlib import AbstractContextManager
from typing import Any
from typing import overload

import psycopg
from psycopg import AsyncConnection
from psycopg import Connection
from psycopg_pool import AsyncConnectionPool
from psycopg_pool import ConnectionPool

from store.errors import StoreUnavailable
from store.errors import translated
from store.pool import APPLICATION_NAME
from store.statements import Statement
from store.statements import fetch_value
from store.statements import store_function


def _server_spoke(conn: Connection[Any] | AsyncConnection[Any]) -> bool:
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


@overload
def connection(pool: ConnectionPool[Any]) -> AbstractContextManager[Connection[Any]]: ...


@overload
def connection(
    pool: AsyncConnectionPool[Any],
) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...


def connection(
    pool: ConnectionPool[Any] | AsyncConnectionPool[Any],
) -> AbstractContextManager[Connection[Any]] | AbstractAsyncContextManager[AsyncConnection[Any]]:
    """A pooled connection in autocommit mode, checked as it is lent: reads
    cost one round trip, and writes open `conn.transaction()` explicitly.
    `with` for a pool of the actors, `async with` for the gateway's."""
    if isinstance(pool, AsyncConnectionPool):
        return _lent_async(pool)
    return _lent(pool)


@contextlib.contextmanager
def _lent(pool: ConnectionPool[Any]) -> Iterator[Connection[Any]]:
    with translated():
        # Every connection in the pool may be dead (a restart), and then one more.
        for _ in range(pool.max_size + 1):
            conn: Connection[Any] = pool.getconn()
            if _server_spoke(conn):
                try:
                    ConnectionPool.check_connection(conn)
                except psycopg.Error:
                    pool.putconn(conn)
                    continue
            try:
                yield conn
            finally:
                pool.putconn(conn)
            return
        raise StoreUnavailable("every pooled connection was dead")


@contextlib.asynccontextmanager
async def _lent_async(pool: AsyncConnectionPool[Any]) -> AsyncIterator[AsyncConnection[Any]]:
    with translated():
        for _ in range(pool.max_size + 1):
            conn: AsyncConnection[Any] = await pool.getconn()
            if _server_spoke(conn):
                try:
                    await AsyncConnectionPool.check_connection(conn)
                except psycopg.Error:
                    await pool.putconn(conn)
                    continue
            try:
                yield conn
            finally:
                await pool.putconn(conn)
            return
        raise StoreUnavailable("every pooled connection was dead")


@contextlib.contextmanager
def connect(database_url: str, *, autocommit: bool = False) -> Iterator[Connection[Any]]:
    """A connection of its own, outside any pool, for a command-line run.
    Without autocommit its work is one transaction, committed when the block
    ends well and rolled back when it raises."""
    with (
        translated(),
        psycopg.connect(
            database_url, autocommit=autocommit, application_name=APPLICATION_NAME
        ) as conn,
    ):
        yield conn


@store_function
def ping() -> Statement[Any]:
    """The cheapest statement there is: Postgres answers, or it does not."""
    return fetch_value("SELECT 1")
