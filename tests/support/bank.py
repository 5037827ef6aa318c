"""A PSP simulator over real HTTP wired into the actors' runtime, with helpers
to read its book and our side of each payment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from actors.card_testing import CardTestingCounter
from actors.runtime import Runtime
from actors.runtime import install
from payments.card_testing import CardTestingPolicy
from psp.breaker import CircuitBreaker
from psp.protocol import Connectors
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from store.pool import open_pool
from tests.support.simulator import API_KEY
from tests.support.simulator import serving_simulator


@dataclass
class Bank:
    url: str
    db: psycopg.Connection

    def knobs(self, **values: Any) -> None:
        httpx.patch(f"{self.url}/_admin/faults", json=values).raise_for_status()

    def charges(self, payment_id: str) -> list[dict[str, Any]]:
        book = httpx.get(f"{self.url}/_book").json()
        return [c for c in book["charges"] if c["reference"] == payment_id]

    def refunds(self, refund_reference: str) -> list[dict[str, Any]]:
        book = httpx.get(f"{self.url}/_book").json()
        return [r for r in book["refunds"] if r["reference"] == refund_reference]

    def payment(self, payment_id: str) -> tuple[Any, ...]:
        row = self.db.execute(
            "SELECT status, authorized_amount, captured_amount, refunded_amount,"
            " refund_reserved_amount, pending_action, requires_reconciliation"
            " FROM payments WHERE id = %s",
            (payment_id,),
        ).fetchone()
        assert row is not None
        return tuple(row)

    def timeline(self, payment_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self.db.execute(
            "SELECT type, source, detail FROM payment_events WHERE payment_id = %s"
            " ORDER BY created_at, id",
            (payment_id,),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def operation(self, operation_id: str) -> tuple[Any, ...]:
        row = self.db.execute(
            "SELECT status, attempts, outcome_unknown FROM payment_operations WHERE id = %s",
            (operation_id,),
        ).fetchone()
        assert row is not None
        return tuple(row)


@contextlib.contextmanager
def running_bank(folder: Path, database_url: str, redis_url: str) -> Iterator[Bank]:
    """A simulator and the actors' runtime on it, over the given database."""
    with serving_simulator(folder) as url, psycopg.connect(database_url, autocommit=True) as db:
        pool = open_pool(database_url, max_size=6)
        psp = SimulatorConnector(
            SimulatorClientConfig(base_url=url, api_key=API_KEY, read_timeout=0.5)
        )
        client = redis.Redis.from_url(redis_url)
        breaker = CircuitBreaker(client, psp.name, threshold=3, open_seconds=2, refresh_seconds=0)
        counter = CardTestingCounter(client, CardTestingPolicy())
        install(
            lambda: Runtime(
                pool=pool,
                connectors=Connectors({psp.name: psp}),
                breakers={psp.name: breaker},
                card_testing=counter,
            )
        )
        yield Bank(url, db)
        psp.close()
        pool.close()


@pytest.fixture(name="bank")
def bank_fixture(
    tmp_path: Path, database_url: str, redis_url: str, redis_client: redis.Redis
) -> Iterator[Bank]:
    with running_bank(tmp_path, database_url, redis_url) as bank:
        yield bank
