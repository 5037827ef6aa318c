"""A write transaction begun in one round trip, with who acts in it.

Every audited write sets `paystream.actor` and `paystream.request_id` for its
transaction (`store.audit`). Sent apart, BEGIN and that `set_config` cost two
round trips before the first write; sent as one text they cost one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from contextlib import AbstractContextManager
from contextlib import asynccontextmanager
from contextlib import contextmanager
from contextlib import suppress
from typing import Any
from typing import overload

import psycopg
from psycopg import AsyncConnection
from psycopg import Connection
from psycopg.sql import SQL
from psycopg.sql import Composed
from psycopg.sql import Literal


def _begin_as(actor: str, request_id: str | None) -> Composed:
    """BEGIN and `as_actor` as one text, for one round trip (the simple query
    protocol takes several statements, but no parameters: the values are
    quoted as literals)."""
    return SQL(
        "BEGIN; SELECT set_config('paystream.actor', {}, true),"
        " set_config('paystream.request_id', {}, true)"
    ).format(Literal(actor), Literal(request_id or ""))


@overload
def transaction_as(
    conn: Connection[Any], actor: str, request_id: str | None = None
) -> AbstractContextManager[None]: ...


@overload
def transaction_as(
    conn: AsyncConnection[Any], actor: str, request_id: str | None = None
) -> AbstractAsyncContextManager[None]: ...


def transaction_as(
    conn: Connection[Any] | AsyncConnection[Any], actor: str, request_id: str | None = None
) -> AbstractContextManager[None] | AbstractAsyncContextManager[None]:
    """A transaction on an autocommit connection whose changes are audited
    as `actor`, begun in one round trip: committed when the block ends well,
    rolled back when it raises. Inside it, `conn.transaction()` is a savepoint
    as usual."""
    if isinstance(conn, AsyncConnection):
        return _transaction_as_async(conn, actor, request_id)
    return _transaction_as(conn, actor, request_id)


@contextmanager
def _transaction_as(conn: Connection[Any], actor: str, request_id: str | None) -> Iterator[None]:
    conn.execute(_begin_as(actor, request_id), prepare=False)
    try:
        yield
    except BaseException:
        if not conn.closed:
            with suppress(psycopg.Error):  # a broken connection: the pool drops it
                conn.rollback()
        raise
    conn.commit()


@asynccontextmanager
async def _transaction_as_async(
    conn: AsyncConnection[Any], actor: str, request_id: str | None
) -> AsyncIterator[None]:
    await conn.execute(_begin_as(actor, request_id), prepare=False)
    try:
        yield
    except BaseException:
        if not conn.closed:
            with suppress(psycopg.Error):
                await conn.rollback()
        raise
    await conn.commit()
