"""The janitor re-drives what stalled, on a growing schedule, then flags it;
it never fails a payment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from actors.janitor import JanitorPolicy
from actors.janitor import Nudges
from actors.janitor import sweep
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.payments import create_payment

POLICY = JanitorPolicy(
    idle=timedelta(seconds=30), schedule=[timedelta(seconds=60), timedelta(seconds=600)]
)


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = open_pool(database_url, max_size=4)
    yield pool
    pool.close()


def stall(db: psycopg.Connection, operation_id: str, *, minutes: int = 5) -> None:
    """As if the worker holding this operation died `minutes` ago."""
    db.execute(
        "UPDATE payment_operations SET updated_at = now() - make_interval(mins => %s),"
        " next_check_at = NULL WHERE id = %s",
        (minutes, operation_id),
    )


def mine(operations: list[str], sent: list[str]) -> list[str]:
    return [op for op in sent if op in operations]


def test_a_stalled_operation_is_redriven_and_its_next_look_scheduled(
    pool: ConnectionPool, db: psycopg.Connection, database_url: str, merchant: Merchant
) -> None:
    _, stalled = create_payment(database_url, merchant)
    _, fresh = create_payment(database_url, merchant)
    stall(db, stalled)
    sent: list[str] = []
    sweep(pool, POLICY, Nudges(sent.append, lambda inbox_id: None, lambda payment_id: None))
    assert mine([stalled, fresh], sent) == [stalled]
    checks, next_in = db.execute(
        "SELECT janitor_checks, next_check_at - now() FROM payment_operations WHERE id = %s",
        (stalled,),
    ).fetchone()  # type: ignore[misc]
    assert checks == 1 and timedelta(seconds=55) < next_in <= timedelta(seconds=60)
    sent.clear()
    sweep(pool, POLICY, Nudges(sent.append, lambda inbox_id: None, lambda payment_id: None))
    assert mine([stalled], sent) == []  # not before its next look


def test_after_the_last_step_the_payment_is_flagged_for_reconciliation_not_failed(
    pool: ConnectionPool, db: psycopg.Connection, database_url: str, merchant: Merchant
) -> None:
    payment_id, operation = create_payment(database_url, merchant)
    sent: list[str] = []
    for _ in POLICY.schedule:
        stall(db, operation)
        sweep(pool, POLICY, Nudges(sent.append, lambda inbox_id: None, lambda payment_id: None))
    assert mine([operation], sent) == [operation, operation]
    stall(db, operation)
    sweep(pool, POLICY, Nudges(sent.append, lambda inbox_id: None, lambda payment_id: None))
    status, flagged, reason = db.execute(
        "SELECT status, requires_reconciliation, reconciliation_reason FROM payments WHERE id = %s",
        (payment_id,),
    ).fetchone()  # type: ignore[misc]
    assert (status, flagged) == ("PENDING", True) and "2 janitor re-drives" in reason
    event = db.execute(
        "SELECT type, source FROM payment_events WHERE payment_id = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (payment_id,),
    ).fetchone()
    assert event == ("payment.flagged_for_reconciliation", "janitor")
    sent.clear()
    stall(db, operation)
    sweep(pool, POLICY, Nudges(sent.append, lambda inbox_id: None, lambda payment_id: None))
    assert mine([operation], sent) == []  # flagged: left to reconciliation


def test_two_janitors_sweeping_at_once_redrive_each_operation_once(
    pool: ConnectionPool, db: psycopg.Connection, database_url: str, merchant: Merchant
) -> None:
    operations = [create_payment(database_url, merchant)[1] for _ in range(40)]
    for operation in operations:
        stall(db, operation)
    sent: list[str] = []
    start = threading.Barrier(2)

    def janitor() -> None:
        start.wait()
        sweep(pool, POLICY, Nudges(sent.append, lambda inbox_id: None, lambda payment_id: None))

    threads = [threading.Thread(target=janitor) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(mine(operations, sent)) == sorted(operations)


def test_expired_idempotency_records_are_deleted(
    pool: ConnectionPool, db: psycopg.Connection, merchant: Merchant
) -> None:
    db.execute(
        "INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status,"
        " response_payload, expires_at)"
        " VALUES (%s, 'old', '\\x00', 201, '{}', now() - interval '1 s'),"
        " (%s, 'live', '\\x00', 201, '{}', now() + interval '1 h')",
        (merchant.id, merchant.id),
    )
    sweep(pool, POLICY, Nudges(lambda op: None, lambda inbox_id: None, lambda payment_id: None))
    keys = db.execute("SELECT key FROM idempotency_keys WHERE merchant_id = %s", (merchant.id,))
    assert [row[0] for row in keys] == ["live"]


def test_a_stored_callback_whose_nudge_was_lost_is_handed_to_the_workers_again(
    pool: ConnectionPool, db: psycopg.Connection
) -> None:
    db.execute(
        "INSERT INTO webhook_inbox (id, provider, webhook_id, event_type, payload, updated_at)"
        " VALUES ('whin_stalled', 'simulator', 'msg_stalled', 'payment.captured', '{}',"
        " now() - interval '5 minutes'), ('whin_fresh', 'simulator', 'msg_fresh',"
        " 'payment.captured', '{}', now())"
    )
    webhooks: list[str] = []
    sweep(pool, POLICY, Nudges(lambda op: None, webhooks.append, lambda payment_id: None))
    assert "whin_stalled" in webhooks and "whin_fresh" not in webhooks
