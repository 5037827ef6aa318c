"""The outbox relay: publishes the events written by transitions to the Redis
Stream `events`, after their transaction committed.

Each batch is claimed with `FOR UPDATE SKIP LOCKED` (several relays share the
work), added to the stream with `XADD`, and marked published in the same
transaction. A relay that dies between the XADD and the commit publishes the
batch again: delivery is at least once, and every consumer dedupes on the
event id.

The stream is trimmed below the oldest entry any consumer group still needs
(its oldest pending entry, else its last delivered one), so nothing a group
has not acknowledged is ever dropped. And since Redis may be flushed or lost,
an event published but not yet taken in by the fan-out whose entry is gone
from the stream is published again: the outbox, not the stream, is the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import orjson
import redis
from psycopg_pool import ConnectionPool

from store.db import connection
from store.errors import StoreUnavailable
from store.outbox import claim_awaiting_fan_out
from store.outbox import claim_unpublished
from store.outbox import mark_published
from store.outbox import mark_unpublished

logger = logging.getLogger("paystream.relay")

STREAM = "events"
# Trimming and looking for lost entries read every group's state and the
# stream: now and then is enough.
SWEEP_EVERY_SECONDS = 10.0
# An event is looked for in the stream once it is this old and not yet taken
# in. Whether it is copied depends on its entry alone: an entry the fan-out
# has not acknowledged is never trimmed, so an absent one was lost. The age
# only keeps the sweep off events the fan-out is taking in right now; it is
# short, so that after a Redis flush the events lost wait seconds, not minutes.
REPUBLISH_AFTER = timedelta(seconds=5)


def publish_batch(pool: ConnectionPool[Any], client: redis.Redis, batch: int) -> int:
    """Publish up to `batch` unpublished events; returns how many."""
    with connection(pool) as conn, conn.transaction():
        entries = claim_unpublished(conn, batch)
        if not entries:
            return 0
        pipe = client.pipeline(transaction=False)
        for entry in entries:
            pipe.xadd(
                STREAM,
                {
                    "event_id": entry.event_id,
                    "merchant_id": entry.merchant_id,
                    "type": entry.event_type,
                    "payload": orjson.dumps(entry.payload),
                },
            )
        stream_ids = pipe.execute()
        mark_published(
            conn, [entry.id for entry in entries], [_text(stream_id) for stream_id in stream_ids]
        )
    return len(entries)


def republish_lost(
    pool: ConnectionPool[Any], client: redis.Redis, *, older_than: timedelta, limit: int = 500
) -> int:
    """Publish again the events whose stream entry vanished before the fan-out
    took them (a Redis flush or a lost Redis): the outbox is the truth, the
    stream only a copy. Consumers dedupe, so a spare copy is harmless.
    Returns how many were queued again."""
    if not _has_consumer_groups(client):
        return 0  # nobody reads the stream: nothing is waiting on it
    with connection(pool) as conn, conn.transaction():
        published = claim_awaiting_fan_out(conn, older_than, limit)
        if not published:
            return 0
        pipe = client.pipeline(transaction=False)
        for entry in published:
            pipe.xrange(STREAM, entry.stream_id or "0-0", entry.stream_id or "0-0")
        found = pipe.execute()
        lost = [entry.id for entry, there in zip(published, found, strict=True) if not there]
        if lost:
            mark_unpublished(conn, lost)
            logger.warning(
                "%d published event(s) were lost from the stream; publishing again", len(lost)
            )
    return len(lost)


def _has_consumer_groups(client: redis.Redis) -> bool:
    try:
        return bool(client.xinfo_groups(STREAM))
    except redis.ResponseError:  # no stream at all
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def trim_acknowledged(client: redis.Redis) -> int:
    """Drop the entries every consumer group is done with; returns how many.
    Without any group nothing is trimmed: a group created later reads all."""
    try:
        groups = client.xinfo_groups(STREAM)
    except redis.ResponseError:  # no stream yet
        return 0
    if not groups:
        return 0
    needed = []
    for group in groups:
        name = group["name"]
        pending = client.xpending(STREAM, name)
        if pending["pending"]:
            needed.append(_entry_id(pending["min"]))
        else:
            needed.append(_entry_id(group["last-delivered-id"]))
    oldest_needed = min(needed)
    return int(
        client.xtrim(STREAM, minid=f"{oldest_needed[0]}-{oldest_needed[1]}", approximate=False)
    )


def _entry_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


def run(
    pool: ConnectionPool[Any],
    client: redis.Redis,
    *,
    stop: threading.Event,
    batch: int = 500,
    idle_wait: float = 0.05,
) -> None:
    logger.info("relay started")
    next_sweep = 0.0
    while not stop.is_set():
        try:
            published = publish_batch(pool, client, batch)
            if time.monotonic() >= next_sweep:
                republish_lost(pool, client, older_than=REPUBLISH_AFTER)
                trim_acknowledged(client)
                next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        except (StoreUnavailable, redis.RedisError) as error:
            logger.warning("relay paused: %s", error)
            stop.wait(1.0)
            continue
        if published < batch:
            stop.wait(idle_wait)
