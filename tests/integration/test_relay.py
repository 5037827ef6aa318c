"""The outbox relay against real Postgres and Redis, killed mid-batch included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool

from actors.relay import STREAM
from actors.relay import publish_batch
from actors.relay import trim_acknowledged
from stack.ports import wait_until
from store.pool import open_pool
from tests.conftest import Merchant


@pytest.fixture
def pool(database_url: str):  # type: ignore[no-untyped-def]
    pool = open_pool(database_url, max_size=4)
    yield pool
    pool.close()


def write_events(db: psycopg.Connection, merchant: Merchant, count: int) -> list[str]:
    event_ids = [f"evt_{uuid.uuid4().hex}" for _ in range(count)]
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO outbox (event_id, merchant_id, event_type, payload) VALUES (%s, %s, %s, %s)",
            [
                (e, merchant.id, "payment.created", psycopg.types.json.Jsonb({"id": e}))
                for e in event_ids
            ],
        )
    return event_ids


def streamed(client: redis.Redis) -> list[str]:
    return [fields[b"event_id"].decode() for _, fields in client.xrange(STREAM)]


def unpublished(db: psycopg.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0])  # type: ignore[index]


def drain(pool: ConnectionPool, client: redis.Redis) -> None:
    while publish_batch(pool, client, 500):
        pass


def test_the_relay_publishes_every_event_once_with_its_fields(
    pool: ConnectionPool, db: psycopg.Connection, merchant: Merchant, redis_client: redis.Redis
) -> None:
    drain(pool, redis_client)
    redis_client.delete(STREAM)
    event_ids = write_events(db, merchant, 1200)
    drain(pool, redis_client)
    assert streamed(redis_client) == event_ids and unpublished(db) == 0
    _, fields = redis_client.xrange(STREAM, count=1)[0]
    assert set(fields) == {b"event_id", b"merchant_id", b"type", b"payload"}
    assert publish_batch(pool, redis_client, 500) == 0


def test_two_relays_at_once_publish_each_event_exactly_once(
    pool: ConnectionPool, db: psycopg.Connection, merchant: Merchant, redis_client: redis.Redis
) -> None:
    drain(pool, redis_client)
    redis_client.delete(STREAM)
    event_ids = write_events(db, merchant, 3000)
    start = threading.Barrier(2)

    def relay() -> None:
        start.wait()
        while publish_batch(pool, redis_client, 100):
            pass

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    published = streamed(redis_client)
    assert sorted(published) == sorted(event_ids)


def test_a_relay_killed_mid_batch_loses_no_event(
    database_url: str,
    redis_url: str,
    db: psycopg.Connection,
    merchant: Merchant,
    redis_client: redis.Redis,
    pool: ConnectionPool,
) -> None:
    drain(pool, redis_client)
    redis_client.delete(STREAM)
    event_ids = write_events(db, merchant, 30_000)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    relay = subprocess.Popen(
        [sys.executable, "-m", "paystream", "relay"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: redis_client.xlen(STREAM),
            holds=lambda published: published >= 2_000,
            timeout=30,
            what="the relay to publish 2,000 events",
            interval=0.01,
        )
    finally:
        relay.send_signal(signal.SIGKILL)
        relay.wait()
    assert redis_client.xlen(STREAM) >= 2_000, "the relay never got going"
    assert unpublished(db) > 0, "the relay finished before it could be killed"
    drain(pool, redis_client)
    published = streamed(redis_client)
    assert set(published) == set(event_ids) and unpublished(db) == 0
    # A batch that was added but not marked published comes again: duplicates,
    # which consumers drop by event id; never a gap.
    assert len(published) >= len(event_ids)


def test_trimming_never_drops_what_a_group_has_not_acknowledged(redis_client: redis.Redis) -> None:
    ids = [redis_client.xadd(STREAM, {"event_id": f"e{i}"}) for i in range(10)]
    redis_client.xgroup_create(STREAM, "slow", id="0")
    redis_client.xgroup_create(STREAM, "fast", id="0")
    redis_client.xreadgroup("fast", "c", {STREAM: ">"}, count=10)
    redis_client.xack(STREAM, "fast", *ids)
    redis_client.xreadgroup("slow", "c", {STREAM: ">"}, count=6)
    redis_client.xack(STREAM, "slow", *ids[:3])
    trim_acknowledged(redis_client)
    remaining = [entry_id for entry_id, _ in redis_client.xrange(STREAM)]
    assert remaining == ids[3:]  # the slow group's pending entries stay
    redis_client.xack(STREAM, "slow", *ids[3:6])
    trim_acknowledged(redis_client)
    assert next(entry_id for entry_id, _ in redis_client.xrange(STREAM)) == ids[5]
