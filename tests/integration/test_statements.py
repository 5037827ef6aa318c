"""The store's one way to Postgres: a store function written once runs on a
sync connection and, awaited, on an async one, with the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterable
from collections.abc import AsyncIterator
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
import pytest

from store.errors import StoreUnavailable
from store.statements import Statement
from store.statements import Steps
from store.statements import copy_chunks
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_one
from store.statements import fetch_value
from store.statements import in_transaction
from store.statements import store_function

pytestmark = pytest.mark.anyio

_TABLE = "CREATE TEMP TABLE notes (id int PRIMARY KEY, body text NOT NULL)"


@dataclass(frozen=True)
class Note:
    id: int
    body: str


@store_function
def add_note(note_id: int, body: str) -> Statement[int]:
    return execute("INSERT INTO notes (id, body) VALUES (%s, %s)", (note_id, body))


@store_function
def get_note(note_id: int) -> Statement[Note | None]:
    return fetch_one(Note, "SELECT id, body FROM notes WHERE id = %s", (note_id,))


@store_function
def all_notes() -> Statement[list[Note]]:
    return fetch_all(Note, "SELECT id, body FROM notes ORDER BY id")


@store_function
def add_after_the_last(body: str) -> Steps[Note]:
    """Two statements, the second built from the first's answer."""
    last = yield from fetch_value("SELECT coalesce(max(id), 0) FROM notes")
    yield from add_note.steps(last + 1, body)
    note = yield from get_note.steps(last + 1)
    assert note is not None
    return note


@store_function
def add_unless_taken(note_id: int, body: str) -> Steps[bool]:
    """A failure is raised at its yield; in a transaction of its own it
    rolls back that transaction only."""
    try:
        yield from in_transaction(add_note.steps(note_id, body))
    except psycopg.errors.UniqueViolation:
        return False
    return True


@store_function
def copy_notes(chunks: Iterable[bytes] | AsyncIterable[bytes]) -> Statement[None]:
    return copy_chunks("COPY notes (id, body) FROM STDIN WITH (FORMAT csv)", chunks)


@store_function
def run_sql(sql: str) -> Statement[int]:
    return execute(sql)


def test_a_store_function_runs_on_a_sync_connection(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(_TABLE)
        add_note(conn, 1, "one")
        assert get_note(conn, 1) == Note(1, "one")
        assert get_note(conn, 2) is None
        assert add_after_the_last(conn, "two") == Note(2, "two")
        assert all_notes(conn) == [Note(1, "one"), Note(2, "two")]


async def test_the_same_store_function_awaited_runs_on_an_async_connection(
    database_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(_TABLE)
        await add_note(conn, 1, "one")
        assert await get_note(conn, 1) == Note(1, "one")
        assert await get_note(conn, 2) is None
        assert await add_after_the_last(conn, "two") == Note(2, "two")
        assert await all_notes(conn) == [Note(1, "one"), Note(2, "two")]


async def test_a_failed_statement_is_raised_at_its_yield_and_rolls_back_its_transaction(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(_TABLE)
        assert add_unless_taken(conn, 1, "one") is True
        assert add_unless_taken(conn, 1, "again") is False
        assert add_after_the_last(conn, "two") == Note(2, "two")
    async with await psycopg.AsyncConnection.connect(database_url) as aconn:
        await aconn.execute(_TABLE)
        assert await add_unless_taken(aconn, 1, "one") is True
        assert await add_unless_taken(aconn, 1, "again") is False
        assert await all_notes(aconn) == [Note(1, "one")]


async def test_copy_sends_an_iterable_on_either_connection_and_an_async_one_only_awaited(
    database_url: str,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"1,one\n"
        yield b"2,two\n"

    async with await psycopg.AsyncConnection.connect(database_url) as aconn:
        await aconn.execute(_TABLE)
        await copy_notes(aconn, chunks())
        await copy_notes(aconn, [b"3,three\n"])
        assert [note.id for note in await all_notes(aconn)] == [1, 2, 3]
    with psycopg.connect(database_url) as conn:
        conn.execute(_TABLE)
        copy_notes(conn, [b"1,one\n"])
        assert all_notes(conn) == [Note(1, "one")]
        with pytest.raises(TypeError):
            copy_notes(conn, chunks())


def test_postgres_gone_is_store_unavailable_not_a_psycopg_error(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_TABLE)
        with pytest.raises(StoreUnavailable):
            run_sql(conn, "SELECT pg_terminate_backend(pg_backend_pid())")
