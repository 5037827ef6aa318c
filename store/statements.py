"""The one way the store talks to Postgres: each store function is written
once, as the statements it runs, and `@store_function` makes it run on either
kind of connection.

A store function returns a `Statement` (its SQL, its parameters and how its
result is read), or it is a generator that yields statements and receives
their results, when one statement's answer builds the next:

    @store_function
    def get_payment(merchant_id: str, payment_id: str) -> Statement[PaymentRecord | None]:
        return fetch_one(PaymentRecord, f"SELECT {columns(PaymentRecord)} ...", (...))

    @store_function
    def record_change(payment: PaymentRecord, change: Change, ...) -> Steps[Changed]:
        updated = yield from fetch_one(PaymentRecord, "UPDATE payments ... RETURNING ...", ...)
        event = yield from append_event.steps(updated, change.event_type, ...)
        return Changed(updated, event)

    payment = get_payment(conn, merchant_id, payment_id)        # psycopg.Connection
    payment = await get_payment(conn, merchant_id, payment_id)  # psycopg.AsyncConnection

Synchronous for the actors and the command line, awaitable for the gateway:
the actors stay synchronous because that was measured to be faster
(`bench/runtime_choice.py`, see the README), and the gateway is async.

A statement that fails is raised inside the store function, at its `yield`,
so the function can catch what it expects (a lock timeout, a report COPY
refuses); what escapes is translated at the store's edge (`store.errors`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterable
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from enum import auto
from typing import Any
from typing import Generic
from typing import ParamSpec
from typing import TypeVar
from typing import overload

from psycopg import AsyncConnection
from psycopg import Connection
from psycopg.rows import RowFactory
from psycopg.rows import class_row
from psycopg.rows import scalar_row
from psycopg.rows import tuple_row
from psycopg.sql import SQL
from psycopg.sql import Composed
from psycopg.types.json import Jsonb

from store.errors import translated

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
Query = str | bytes | SQL | Composed


class Read(Enum):
    """How a statement's result is read."""

    ONE = auto()  # the first row, or None
    ALL = auto()  # every row
    ROWCOUNT = auto()  # how many rows it wrote
    MANY = auto()  # the same statement for each set of parameters; rows written, all told
    COPY = auto()  # COPY ... FROM STDIN, sent as chunks of its text
    COPY_ROWS = auto()  # COPY ... FROM STDIN, sent row by row


@dataclass(frozen=True, slots=True)
class Statement(Generic[T]):
    """One statement: its SQL, its parameters and how its result is read.
    `data` is what a COPY sends: chunks (an async iterable only on an
    AsyncConnection) or rows."""

    sql: Query
    params: Any = None
    read: Read = Read.ROWCOUNT
    row_factory: RowFactory[Any] = tuple_row
    data: Any = None

    def __iter__(self) -> Generator[Step, Any, T]:
        """In a store function, `result = yield from statement`, typed."""
        result: T = yield self
        return result


@dataclass(frozen=True, slots=True)
class Transaction(Generic[T]):
    """Steps run in a transaction of their own (a savepoint inside the
    caller's): a failure rolls back what they did, and nothing else."""

    steps: Generator[Step, Any, T]

    def __iter__(self) -> Generator[Step, Any, T]:
        result: T = yield self
        return result


Step = Statement[Any] | Transaction[Any]
Steps = Generator[Step, Any, T]


# --- statements -----------------------------------------------------------------


def fetch_one(record: type[R], sql: Query, params: Any = None) -> Statement[R | None]:
    """The first row, loaded into `record` (its fields named as the columns), or None."""
    return Statement(sql, params, Read.ONE, class_row(record))


def fetch_all(record: type[R], sql: Query, params: Any = None) -> Statement[list[R]]:
    return Statement(sql, params, Read.ALL, class_row(record))


def fetch_by_id(
    record: type[R],
    table: str,
    row_id: str,
    *,
    merchant_id: str | None = None,
    where: str | None = None,
    for_update: bool = False,
) -> Statement[R | None]:
    """The row of `table` with this id, loaded into `record`, or None. Given a
    `merchant_id`, that merchant's only: another merchant's row is None,
    exactly as a missing one. `where` is a condition it must also meet (not
    deleted); `for_update` locks it until the transaction ends."""
    conditions, params = ["id = %s"], [row_id]
    if merchant_id is not None:
        conditions.append("merchant_id = %s")
        params.append(merchant_id)
    if where is not None:
        conditions.append(where)
    lock = " FOR UPDATE" if for_update else ""
    sql = f"SELECT {columns(record)} FROM {table} WHERE {' AND '.join(conditions)}{lock}"
    return fetch_one(record, sql, tuple(params))


@dataclass(frozen=True, slots=True)
class Backlog:
    """Rows a background process has yet to take, and the age in seconds of
    the oldest (0 when none waits)."""

    waiting: int
    lag_seconds: float


def fetch_backlog(rows: str, since: str) -> Statement[Backlog | None]:
    """How many `rows` (a table and its condition) wait, and how long the
    oldest has waited by its timestamp column `since`."""
    return fetch_one(
        Backlog,
        "SELECT count(*)::int AS waiting,"
        f" coalesce(extract(epoch FROM now() - min({since})), 0)::float8 AS lag_seconds"
        f" FROM {rows}",
    )


def fetch_value(sql: Query, params: Any = None) -> Statement[Any]:
    """The first column of the first row; None without a row."""
    return Statement(sql, params, Read.ONE, scalar_row)


def fetch_values(sql: Query, params: Any = None) -> Statement[list[Any]]:
    """The first column of every row."""
    return Statement(sql, params, Read.ALL, scalar_row)


def fetch_row(sql: Query, params: Any = None) -> Statement[tuple[Any, ...] | None]:
    """The first row as a tuple, or None."""
    return Statement(sql, params, Read.ONE, tuple_row)


def fetch_tuples(sql: Query, params: Any = None) -> Statement[list[tuple[Any, ...]]]:
    return Statement(sql, params, Read.ALL, tuple_row)


def execute(sql: Query, params: Any = None) -> Statement[int]:
    """A statement run for its effect; answers how many rows it wrote."""
    return Statement(sql, params, Read.ROWCOUNT)


def execute_many(sql: Query, params: Iterable[Any]) -> Statement[int]:
    return Statement(sql, list(params), Read.MANY)


def copy_chunks(sql: Query, chunks: Iterable[bytes] | AsyncIterable[bytes]) -> Statement[None]:
    return Statement(sql, None, Read.COPY, data=chunks)


def copy_rows(sql: Query, rows: Iterable[Sequence[Any]]) -> Statement[None]:
    return Statement(sql, None, Read.COPY_ROWS, data=rows)


def in_transaction(steps: Steps[T]) -> Transaction[T]:
    return Transaction(steps)


def columns(record: type[Any], table: str | None = None) -> str:
    """The select list that loads rows into `record`: its fields, in order,
    optionally qualified by a table alias. A field named for a keyword
    (`class_`) selects the column (`class`) under the field's name."""
    prefix = f"{table}." if table else ""
    selected = []
    for field in dataclasses.fields(record):
        column = field.name.removesuffix("_")
        alias = f" AS {field.name}" if column != field.name else ""
        selected.append(f"{prefix}{column}{alias}")
    return ", ".join(selected)


def placeholders(record: type[Any]) -> str:
    """`%(field)s` for each of a record's fields, in order: the VALUES of an
    INSERT of its `columns` with its `parameters`."""
    return ", ".join(f"%({field.name})s" for field in dataclasses.fields(record))


def parameters(record: Any) -> dict[str, Any]:
    """A record's fields as named parameters, dicts as JSON."""
    return {
        field.name: Jsonb(value) if isinstance(value, dict) else value
        for field in dataclasses.fields(record)
        for value in (getattr(record, field.name),)
    }


# --- the runners ----------------------------------------------------------------


Work = Statement[T] | Steps[T]


def _steps(work: Work[T]) -> Steps[T]:
    return iter(work) if isinstance(work, Statement) else work


def run(conn: Connection[Any], work: Work[T]) -> T:
    """Run a statement, or a store function's steps, on a connection."""
    with translated():
        return _drive(conn, _steps(work))


async def run_async(conn: AsyncConnection[Any], work: Work[T]) -> T:
    with translated():
        return await _drive_async(conn, _steps(work))


@dataclass(frozen=True, slots=True)
class _Returned:
    value: Any


def _next_step(steps: Steps[Any], reply: Any, failure: Exception | None) -> Step | _Returned:
    """Hand the store function its last step's result (or raise its failure
    at its yield); its next step, or what it returned."""
    try:
        return steps.send(reply) if failure is None else steps.throw(failure)
    except StopIteration as done:
        return _Returned(done.value)


def _drive(conn: Connection[Any], steps: Steps[T]) -> T:
    reply, failure = None, None
    while not isinstance(step := _next_step(steps, reply, failure), _Returned):
        try:
            reply, failure = _execute(conn, step), None
        except Exception as error:
            reply, failure = None, error
    result: T = step.value
    return result


async def _drive_async(conn: AsyncConnection[Any], steps: Steps[T]) -> T:
    reply, failure = None, None
    while not isinstance(step := _next_step(steps, reply, failure), _Returned):
        try:
            reply, failure = await _execute_async(conn, step), None
        except Exception as error:
            reply, failure = None, error
    result: T = step.value
    return result


def _execute(conn: Connection[Any], step: Step) -> Any:
    if isinstance(step, Transaction):
        with conn.transaction():
            return _drive(conn, step.steps)
    with conn.cursor(row_factory=step.row_factory) as cursor:
        match step.read:
            case Read.MANY:
                cursor.executemany(step.sql, step.params)
                return cursor.rowcount
            case Read.COPY | Read.COPY_ROWS:
                if isinstance(step.data, AsyncIterable):
                    raise TypeError("an async iterable is copied on an AsyncConnection only")
                with cursor.copy(step.sql) as copy:
                    write = copy.write if step.read is Read.COPY else copy.write_row
                    for item in step.data:
                        write(item)
                return None
        cursor.execute(step.sql, step.params)
        match step.read:
            case Read.ONE:
                return cursor.fetchone()
            case Read.ALL:
                return cursor.fetchall()
        return cursor.rowcount


async def _execute_async(conn: AsyncConnection[Any], step: Step) -> Any:
    if isinstance(step, Transaction):
        async with conn.transaction():
            return await _drive_async(conn, step.steps)
    async with conn.cursor(row_factory=step.row_factory) as cursor:
        match step.read:
            case Read.MANY:
                await cursor.executemany(step.sql, step.params)
                return cursor.rowcount
            case Read.COPY | Read.COPY_ROWS:
                async with cursor.copy(step.sql) as copy:
                    write = copy.write if step.read is Read.COPY else copy.write_row
                    if isinstance(step.data, AsyncIterable):
                        async for item in step.data:
                            await write(item)
                    else:
                        for item in step.data:
                            await write(item)
                return None
        await cursor.execute(step.sql, step.params)
        match step.read:
            case Read.ONE:
                return await cursor.fetchone()
            case Read.ALL:
                return await cursor.fetchall()
        return cursor.rowcount


# --- the decorator --------------------------------------------------------------


class StoreFunction(Generic[P, T]):
    """A store function: runs on a `Connection`, or returns an awaitable on
    an `AsyncConnection`; `steps` hands its statements to another store
    function (`yield from`)."""

    def __init__(self, body: Callable[P, Work[T]]) -> None:
        self._body = body
        functools.update_wrapper(self, body)

    @overload
    def __call__(self, conn: Connection[Any], /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    @overload
    def __call__(
        self, conn: AsyncConnection[Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...

    def __call__(
        self, conn: Connection[Any] | AsyncConnection[Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | Awaitable[T]:
        work = self._body(*args, **kwargs)
        if isinstance(conn, AsyncConnection):
            return run_async(conn, work)
        return run(conn, work)

    def steps(self, *args: P.args, **kwargs: P.kwargs) -> Steps[T]:
        return _steps(self._body(*args, **kwargs))


def store_function(body: Callable[P, Work[T]]) -> StoreFunction[P, T]:
    return StoreFunction(body)
