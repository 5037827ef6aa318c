"""Two PSPs side by side (two simulators, each with its own book, under the
names alpha and beta): everything after a payment's creation goes to its own
PSP's connector, and one PSP's circuit breaker stops no other's payments. A
third, gamma, asks every customer to authenticate: its payments wait for
their customer, and are asked about at gamma."""

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

from actors.authentication import check_authentication
from actors.card_testing import CardTestingCounter
from actors.errors import TryAgain
from actors.operations import drive_operation
from actors.psp_webhooks import apply_psp_webhook
from actors.runtime import Runtime
from actors.runtime import install
from payments.card_testing import CardTestingPolicy
from psp.breaker import CircuitBreaker
from psp.breaker import open_key
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import Connectors
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from store.pool import open_pool
from tests.conftest import Merchant
from tests.support.callbacks import store_callback
from tests.support.payments import create_payment
from tests.support.simulator import API_KEY
from tests.support.simulator import serving_simulator

PSPS = ("alpha", "beta")


class AsksTheCustomer:
    """A PSP that answers every payment with REQUIRES_ACTION (3-D Secure),
    by its answer and by inquiry alike."""

    name = "gamma"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _answer(self, reference: str) -> Answered[PspPayment]:
        return Answered(
            PspPayment(
                psp_reference=f"gm_{reference}",
                reference=reference,
                status=PspPaymentStatus.REQUIRES_ACTION,
                amount=1000,
                currency="EUR",
                authorized_amount=0,
                captured_amount=0,
                refunded_amount=0,
                next_action_url="https://gamma.example/3ds",
            )
        )

    def authorize(self, request: AuthorizeRequest, *, idempotency_key: str) -> Answered[PspPayment]:
        self.calls.append("authorize")
        return self._answer(request.reference)

    def find_payment(
        self, reference: str, psp_reference: str | None = None
    ) -> Answered[PspPayment]:
        self.calls.append("find_payment")
        return self._answer(reference)


@dataclass
class Psps:
    urls: dict[str, str]
    db: psycopg.Connection
    gamma: AsksTheCustomer

    def knobs(self, psp: str, **values: Any) -> None:
        httpx.patch(f"{self.urls[psp]}/_admin/faults", json=values).raise_for_status()

    def charges(self, psp: str, payment_id: str) -> list[dict[str, Any]]:
        book = httpx.get(f"{self.urls[psp]}/_book").json()
        return [c for c in book["charges"] if c["reference"] == payment_id]

    def status(self, payment_id: str) -> str:
        row = self.db.execute("SELECT status FROM payments WHERE id = %s", (payment_id,))
        return str(row.fetchone()[0])  # type: ignore[index]

    def learned_by(self, payment_id: str) -> list[str]:
        rows = self.db.execute(
            "SELECT detail->>'learnedBy' FROM payment_events WHERE payment_id = %s"
            " AND type = 'payment.captured'",
            (payment_id,),
        )
        return [row[0] for row in rows]


@pytest.fixture
def psps(
    tmp_path: Path, database_url: str, redis_url: str, redis_client: redis.Redis
) -> Iterator[Psps]:
    with contextlib.ExitStack() as running:
        for name in PSPS:
            (tmp_path / name).mkdir()
        urls = {name: running.enter_context(serving_simulator(tmp_path / name)) for name in PSPS}
        connectors = {
            name: SimulatorConnector(
                SimulatorClientConfig(base_url=url, api_key=API_KEY, read_timeout=0.5), name=name
            )
            for name, url in urls.items()
        }
        pool = open_pool(database_url, max_size=4)
        running.callback(pool.close)
        client = redis.Redis.from_url(redis_url)
        breakers = {
            name: CircuitBreaker(client, name, threshold=2, open_seconds=30, refresh_seconds=0)
            for name in PSPS
        }
        counter = CardTestingCounter(client, CardTestingPolicy())
        gamma = AsksTheCustomer()
        breakers["gamma"] = CircuitBreaker(client, "gamma", refresh_seconds=0)
        everyone: dict[str, Any] = {**connectors, "gamma": gamma}
        runtime = Runtime(pool, Connectors(everyone), breakers, counter)
        install(lambda: runtime)
        db = running.enter_context(psycopg.connect(database_url, autocommit=True))
        yield Psps(urls, db, gamma)
        for connector in connectors.values():
            connector.close()


def test_a_payment_is_authorized_and_captured_at_its_own_psp_only(
    psps: Psps, database_url: str, merchant: Merchant
) -> None:
    at_beta, authorize = create_payment(database_url, merchant, psp="beta")
    drive_operation.fn(authorize)
    assert psps.status(at_beta) == "CAPTURED"
    assert len(psps.charges("beta", at_beta)) == 1 and psps.charges("alpha", at_beta) == []


def charged_unheard(psps: Psps, database_url: str, merchant: Merchant) -> tuple[str, str]:
    """A payment at beta that beta charged, its answer lost on the way: still
    PENDING here. Its id and its authorization's operation."""
    payment_id, authorize = create_payment(database_url, merchant, psp="beta")
    psps.knobs("beta", lostResponseRate=1.0)
    with pytest.raises(TryAgain):
        drive_operation.fn(authorize)
    psps.knobs("beta", lostResponseRate=0.0)
    return payment_id, authorize


def test_after_a_lost_answer_the_inquiry_goes_to_the_payments_own_psp(
    psps: Psps, database_url: str, merchant: Merchant
) -> None:
    at_beta, authorize = charged_unheard(psps, database_url, merchant)
    drive_operation.fn(authorize)
    # Had alpha been asked, it would have had no record, and beta charged twice.
    assert psps.learned_by(at_beta) == ["status_inquiry"]
    assert len(psps.charges("beta", at_beta)) == 1 and psps.charges("alpha", at_beta) == []


def inbox(db: psycopg.Connection, inbox_id: str) -> tuple[str, str | None]:
    row = db.execute("SELECT status, last_error FROM webhook_inbox WHERE id = %s", (inbox_id,))
    return row.fetchone()  # type: ignore[return-value]


def test_a_webhook_moves_a_payment_only_when_it_comes_from_the_payments_own_psp(
    psps: Psps, database_url: str, merchant: Merchant
) -> None:
    at_beta, _ = charged_unheard(psps, database_url, merchant)
    [charge] = psps.charges("beta", at_beta)
    from_alpha = store_callback(psps.db, "payment.captured", charge, provider="alpha")
    apply_psp_webhook.fn(from_alpha)
    assert inbox(psps.db, from_alpha) == ("ignored", "the payment is beta's, not alpha's")
    assert psps.status(at_beta) == "PENDING"
    from_beta = store_callback(psps.db, "payment.captured", charge, provider="beta")
    apply_psp_webhook.fn(from_beta)
    assert inbox(psps.db, from_beta) == ("applied", None)
    assert psps.status(at_beta) == "CAPTURED"


def test_one_psps_open_breaker_stops_its_payments_and_not_the_others(
    psps: Psps, database_url: str, merchant: Merchant, redis_client: redis.Redis
) -> None:
    at_alpha = [create_payment(database_url, merchant, psp="alpha") for _ in range(3)]
    psps.knobs("alpha", outages=[{"startsIn": 0, "lasts": 60}])
    for _, operation in at_alpha[:2]:
        with pytest.raises(TryAgain):
            drive_operation.fn(operation)
    assert redis_client.exists(open_key("alpha")) and not redis_client.exists(open_key("beta"))
    with pytest.raises(TryAgain, match="PSP alpha circuit open"):
        drive_operation.fn(at_alpha[2][1])
    at_beta, authorize = create_payment(database_url, merchant, psp="beta")
    drive_operation.fn(authorize)
    assert psps.status(at_beta) == "CAPTURED"
    assert {psps.status(payment_id) for payment_id, _ in at_alpha} == {"PENDING"}
    psps.knobs("alpha", outages=[])


def test_a_psp_asking_the_customer_to_authenticate_leaves_the_payment_waiting_asked_there(
    psps: Psps, database_url: str, merchant: Merchant
) -> None:
    at_gamma, authorize = create_payment(database_url, merchant, psp="gamma")
    drive_operation.fn(authorize)
    check_authentication.fn(at_gamma)

    assert psps.gamma.calls == ["authorize", "find_payment"]
    assert psps.status(at_gamma) == "REQUIRES_ACTION"
    events = psps.db.execute(
        "SELECT type FROM payment_events WHERE payment_id = %s ORDER BY created_at", (at_gamma,)
    ).fetchall()
    assert events == [("payment.created",), ("payment.requires_action",)]
    operation = psps.db.execute(
        "SELECT status FROM payment_operations WHERE id = %s", (authorize,)
    ).fetchone()
    # The call was answered: what is left is the customer's, not a call's.
    assert operation == ("succeeded",)
