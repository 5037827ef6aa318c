"""Pooled connections (`store.db`, `store.pool`) after Postgres drops them: no request pays for a dead one."""

import asyncio
import time

import psycopg
import pytest

from store.db import connection
from store.pool import APPLICATION_NAME
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.gateway import Gateway


def terminate_paystream_backends(db: psycopg.Connection) -> int:
    """What a Postgres restart does to every pooled connection."""
    rows = db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND datname = current_database()",
        (APPLICATION_NAME,),
    ).fetchall()
    return len(rows)


@pytest.mark.anyio
async def test_after_postgres_drops_every_connection_the_next_requests_all_succeed(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    # Given a gateway whose pooled connections Postgres has just terminated
    warm = await asyncio.gather(*(gateway.create_payment(merchant.api_key) for _ in range(4)))
    assert {r.status_code for r in warm} == {201}
    assert terminate_paystream_backends(db) >= 2
    await asyncio.sleep(0.1)  # the goodbye reaches every socket
    # When requests come in, one at a time and then together
    one_by_one = [await gateway.create_payment(merchant.api_key) for _ in range(3)]
    together = await asyncio.gather(*(gateway.create_payment(merchant.api_key) for _ in range(8)))
    # Then none of them is answered 503: dead connections were replaced, not lent
    assert [r.status_code for r in [*one_by_one, *together]] == [201] * 11, one_by_one[0].text


def test_a_worker_pool_replaces_connections_postgres_dropped(
    database_url: str, db: psycopg.Connection
) -> None:
    pool = open_pool(database_url, min_size=3, max_size=3)
    try:
        pool.wait()
        assert terminate_paystream_backends(db) >= 3
        time.sleep(0.1)
        for _ in range(6):
            with connection(pool) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()
