"""The outbox: one row per event, written in the transaction of the change it
reports (`store.timeline`), published to the event stream by the relay after
commit, then taken in ("fanned out") by the merchant webhooks' consumer.

Every statement on the `outbox` table is here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from store.statements import Backlog
from store.statements import Statement
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_backlog
from store.statements import fetch_one
from store.statements import fetch_value
from store.statements import store_function

# An event's outbox row, as the last part of the statement that writes its
# change: selected from that statement's own rows (`FROM created`) or from
# nothing. Parameters: event_id, merchant_id, type, envelope.
QUEUE_EVENT = (
    "INSERT INTO outbox (event_id, merchant_id, event_type, payload)"
    " SELECT %(event_id)s, %(merchant_id)s, %(type)s, %(envelope)s"
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    event_id: str
    merchant_id: str
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Published:
    id: int
    stream_id: str | None


# --- the relay ----------------------------------------------------------------


@store_function
def claim_unpublished(limit: int) -> Statement[list[OutboxEntry]]:
    """Events not on the stream yet, oldest first, locked for the caller's
    transaction; several relays skip each other's."""
    return fetch_all(
        OutboxEntry,
        "SELECT id, event_id, merchant_id, event_type, payload FROM outbox"
        " WHERE published_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )


@store_function
def mark_published(ids: list[int], stream_ids: list[str]) -> Statement[int]:
    """The entries' stream ids, in the order of `ids`."""
    return execute(
        "UPDATE outbox SET published_at = now(), stream_id = entry.stream_id"
        " FROM unnest(%s::bigint[], %s::text[]) AS entry(id, stream_id)"
        " WHERE outbox.id = entry.id",
        (ids, stream_ids),
    )


@store_function
def claim_awaiting_fan_out(older_than: timedelta, limit: int) -> Statement[list[Published]]:
    """Events published `older_than` ago or more that the fan-out has not
    taken in, locked for the caller's transaction: their stream entries may
    be gone (a Redis flush)."""
    return fetch_all(
        Published,
        "SELECT id, stream_id FROM outbox WHERE published_at IS NOT NULL"
        " AND fanned_out_at IS NULL AND published_at <= now() - %s"
        " ORDER BY published_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (older_than, limit),
    )


@store_function
def mark_unpublished(ids: list[int]) -> Statement[int]:
    """Publish these again: their stream entries were lost."""
    return execute(
        "UPDATE outbox SET published_at = NULL, stream_id = NULL WHERE id = ANY(%s)", (ids,)
    )


# --- the fan-out --------------------------------------------------------------


@store_function
def mark_fanned_out(event_ids: list[str]) -> Statement[int]:
    return execute(
        "UPDATE outbox SET fanned_out_at = now()"
        " WHERE event_id = ANY(%s) AND fanned_out_at IS NULL",
        (event_ids,),
    )


# --- what is read about it: metrics, drills ------------------------------------


@store_function
def unpublished_backlog() -> Statement[Backlog | None]:
    return fetch_backlog("outbox WHERE published_at IS NULL", since="created_at")


@dataclass(frozen=True, slots=True)
class Tally:
    events: int
    published: int
    fanned_out: int


@store_function
def outbox_tally() -> Statement[Tally | None]:
    """Every event, and how many were published and taken in."""
    return fetch_one(
        Tally,
        "SELECT count(*)::int AS events, count(published_at)::int AS published,"
        " count(fanned_out_at)::int AS fanned_out FROM outbox",
    )


@store_function
def timeline_events_not_queued() -> Statement[Any]:
    """Timeline events without their outbox row: none, ever, if every change
    wrote both in one statement."""
    return fetch_value(
        "SELECT count(*) FROM payment_events e LEFT JOIN outbox o ON o.event_id = e.id"
        " WHERE o.event_id IS NULL"
    )


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    event_id: str
    payment_id: str | None


@store_function
def queued_events() -> Statement[list[QueuedEvent]]:
    """Every event in the order it was written, with the payment it is about."""
    return fetch_all(
        QueuedEvent,
        "SELECT event_id, payload->'data'->>'paymentId' AS payment_id FROM outbox ORDER BY id",
    )
