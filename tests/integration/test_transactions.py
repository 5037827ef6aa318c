"""store.transactions: a write transaction begun with its actor in one round trip."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import pq

from store.transactions import transaction_as


def test_a_transaction_begun_as_an_actor_names_them_and_commits_what_it_wrote(
    db: psycopg.Connection,
) -> None:
    # Given an autocommit connection and a table of its own
    db.execute("CREATE TEMP TABLE written (x int)")
    # When a transaction is begun as an actor, with a request id, and writes
    with transaction_as(db, "key_o'brien", "req_1"):
        assert db.info.transaction_status == pq.TransactionStatus.INTRANS
        actor, request_id = db.execute(
            "SELECT current_setting('paystream.actor'), current_setting('paystream.request_id')"
        ).fetchone() or (None, None)
        db.execute("INSERT INTO written VALUES (1)")
    # Then it acted as them (a quote in a name is a quote, not SQL), and what it wrote stays
    assert (actor, request_id) == ("key_o'brien", "req_1")
    assert db.info.transaction_status == pq.TransactionStatus.IDLE
    assert db.execute("SELECT count(*) FROM written").fetchone() == (1,)
    # And the actor was the transaction's only
    assert db.execute("SELECT current_setting('paystream.actor', true)").fetchone() in {
        ("",),
        (None,),
    }


def test_a_transaction_that_raises_rolls_back_and_leaves_the_connection_usable(
    db: psycopg.Connection,
) -> None:
    db.execute("CREATE TEMP TABLE written (x int)")
    with pytest.raises(RuntimeError), transaction_as(db, "system:test"):
        db.execute("INSERT INTO written VALUES (1)")
        raise RuntimeError("the work failed")
    assert db.info.transaction_status == pq.TransactionStatus.IDLE
    assert db.execute("SELECT count(*) FROM written").fetchone() == (0,)


def test_a_savepoint_inside_rolls_back_alone(db: psycopg.Connection) -> None:
    db.execute("CREATE TEMP TABLE written (x int)")
    with transaction_as(db, "system:test"):
        db.execute("INSERT INTO written VALUES (1)")
        with pytest.raises(psycopg.errors.DivisionByZero), db.transaction():
            db.execute("INSERT INTO written VALUES (2)")
            db.execute("SELECT 1 / 0")
    assert db.execute("SELECT array_agg(x) FROM written").fetchone() == ([1],)


@pytest.mark.anyio
async def test_on_an_async_connection_it_commits_and_rolls_back_alike(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("CREATE TEMP TABLE written (x int)")
        async with transaction_as(conn, "system:test", "req_2"):
            await conn.execute("INSERT INTO written VALUES (1)")
        with pytest.raises(RuntimeError):
            async with transaction_as(conn, "system:test"):
                await conn.execute("INSERT INTO written VALUES (2)")
                raise RuntimeError("the work failed")
        cursor = await conn.execute("SELECT array_agg(x) FROM written")
        assert await cursor.fetchone() == ([1],)
