"""`paystream_payment_transitions` counts a transition once its transaction
has committed: one that rolls back is not counted, wherever it was written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

import actors.outcomes
from actors.outcomes import apply_payment_fact
from payments.lifecycle import Authorized
from payments.lifecycle import Captured
from payments.lifecycle import apply_fact
from payments.status import EventSource
from store.payment_changes import record_change
from store.payments import get_payment_unscoped
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.gateway import Gateway
from tests.support.payments import create_payment

CAPTURED_BY_PSP = {
    "type": "payment.captured",
    "status": "CAPTURED",
    "source": "psp",
    "psp": "simulator",
}
CREATED_BY_API = {
    "type": "payment.created",
    "status": "PENDING",
    "source": "api",
    "psp": "simulator",
}


def count(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("paystream_payment_transitions_total", labels) or 0.0


def captured_count() -> float:
    return count(CAPTURED_BY_PSP)


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    opened = open_pool(database_url, max_size=2)
    yield opened
    opened.close()


def test_a_committed_transition_is_counted_once(
    pool: ConnectionPool[Any], database_url: str, merchant: Merchant
) -> None:
    payment_id, _ = create_payment(database_url, merchant)
    before = captured_count()
    apply_payment_fact(pool, payment_id, Captured("psp_1", 1000, 1000), source=EventSource.PSP)
    assert captured_count() == before + 1


def timed_authorizations() -> float:
    labels = {"psp": "simulator"}
    found = REGISTRY.get_sample_value("paystream_payment_time_to_authorized_seconds_count", labels)
    return found or 0.0


def test_the_psps_first_yes_is_timed_from_the_payments_creation_and_a_later_capture_is_not(
    pool: ConnectionPool[Any], database_url: str, merchant: Merchant
) -> None:
    payment_id, _ = create_payment(database_url, merchant, capture_method="manual")
    before = timed_authorizations()
    apply_payment_fact(pool, payment_id, Authorized("psp_1", 1000), source=EventSource.PSP)
    assert timed_authorizations() == before + 1
    apply_payment_fact(pool, payment_id, Captured("psp_1", 1000, 1000), source=EventSource.PSP)
    assert timed_authorizations() == before + 1


def test_a_transition_whose_transaction_rolls_back_is_not_counted(
    pool: ConnectionPool[Any],
    database_url: str,
    merchant: Merchant,
    monkeypatch: pytest.MonkeyPatch,
    db: psycopg.Connection,
) -> None:
    payment_id, _ = create_payment(database_url, merchant)

    def ledger_down(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("the ledger refused the entry")

    monkeypatch.setattr(actors.outcomes, "post_entry", ledger_down)
    before = captured_count()
    with pytest.raises(RuntimeError):
        apply_payment_fact(pool, payment_id, Captured("psp_1", 1000, 1000), source=EventSource.PSP)
    assert captured_count() == before
    payment = get_payment_unscoped(db, payment_id)
    assert payment is not None and payment.status == "PENDING"


def test_the_store_counts_nothing_even_for_a_change_it_wrote(
    database_url: str, merchant: Merchant
) -> None:
    payment_id, _ = create_payment(database_url, merchant)
    before = captured_count()
    with psycopg.connect(database_url) as conn:
        locked = get_payment_unscoped(conn, payment_id, for_update=True)
        assert locked is not None
        change = apply_fact(locked.state(), Captured("psp_1", 1000, 1000))
        assert change is not None
        record_change(conn, locked, change, source=EventSource.PSP)
        conn.rollback()
    assert captured_count() == before


@pytest.mark.anyio
async def test_the_gateway_counts_a_payment_it_created_and_not_its_replay_or_a_refusal(
    gateway: Gateway, merchant: Merchant
) -> None:
    before = count(CREATED_BY_API)
    first = await gateway.create_payment(merchant.api_key, "count-1", orderId="count-order")
    replay = await gateway.create_payment(merchant.api_key, "count-1", orderId="count-order")
    refused = await gateway.create_payment(merchant.api_key, "count-2", orderId="count-order")
    assert (first.status_code, replay.status_code, refused.status_code) == (201, 201, 409)
    assert count(CREATED_BY_API) == before + 1
