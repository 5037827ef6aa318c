"""The simulator connector classifies every way a call can end, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import NotFound
from psp.protocol import PspPaymentStatus
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from stack.ports import free_port
from tests.support.simulator import API_KEY
from tests.support.simulator import serving_simulator

SALE = AuthorizeRequest(
    reference="pay_1", amount=1000, currency="EUR", token="tok_visa", capture=True
)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    with serving_simulator(tmp_path) as url:
        yield url


_open: list[SimulatorConnector] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def client(
    url: str,
    read_timeout: float = 2.0,
    api_key: str = API_KEY,
    transport: httpx.BaseTransport | None = None,
) -> SimulatorConnector:
    psp = SimulatorConnector(
        SimulatorClientConfig(
            base_url=url, api_key=api_key, connect_timeout=1.0, read_timeout=read_timeout
        ),
        transport=transport,
    )
    _open.append(psp)
    return psp


def knobs(url: str, **values: object) -> None:
    httpx.patch(f"{url}/_admin/faults", json=values).raise_for_status()


def test_an_approved_sale_is_answered_as_captured(simulator: str) -> None:
    result = client(simulator).authorize(SALE, idempotency_key="k1")
    assert isinstance(result, Answered)
    assert result.value.status is PspPaymentStatus.CAPTURED and result.value.captured_amount == 1000


def test_a_decline_is_an_answer_not_an_error(simulator: str) -> None:
    declined = AuthorizeRequest("pay_2", 1000, "EUR", "tok_decline", capture=True)
    result = client(simulator).authorize(declined, idempotency_key="k2")
    assert isinstance(result, Answered)
    assert (
        result.value.status is PspPaymentStatus.DECLINED
        and result.value.decline_code == "card_declined"
    )


def test_a_server_error_is_retryable(simulator: str) -> None:
    knobs(simulator, errorRate=1.0)
    assert isinstance(client(simulator).authorize(SALE, idempotency_key="k3"), Retryable)


def test_a_refused_connection_is_retryable() -> None:
    result = client(f"http://127.0.0.1:{free_port()}").authorize(SALE, idempotency_key="k4")
    assert isinstance(result, Retryable)


def test_a_timeout_is_unknown_and_the_psp_has_no_record(simulator: str) -> None:
    knobs(simulator, timeoutRate=1.0, hangMs=1500)
    psp = client(simulator, read_timeout=0.5)
    assert isinstance(psp.authorize(SALE, idempotency_key="k5"), Unknown)
    assert isinstance(psp.find_payment("pay_1"), NotFound)


def test_a_lost_response_is_unknown_and_the_psp_has_booked_it(simulator: str) -> None:
    knobs(simulator, lostResponseRate=1.0)
    psp = client(simulator)
    assert isinstance(psp.authorize(SALE, idempotency_key="k6"), Unknown)
    found = psp.find_payment("pay_1")
    assert isinstance(found, Answered) and found.value.status is PspPaymentStatus.CAPTURED
    knobs(simulator, lostResponseRate=0.0)
    replay = psp.authorize(SALE, idempotency_key="k6")
    assert isinstance(replay, Answered) and replay.value.psp_reference == found.value.psp_reference


def test_a_wrong_api_key_is_a_rejection(simulator: str) -> None:
    psp = client(simulator, api_key="wrong")
    result = psp.authorize(SALE, idempotency_key="k7")
    assert isinstance(result, Rejected) and result.code == "unauthorized"


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b"not json"), (200, b'{"id": "psp_1"}'), (201, b"[]")],
)
def test_an_unreadable_success_is_unknown_never_a_guess(status: int, body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    psp = client("http://psp", transport=transport)
    assert isinstance(psp.authorize(SALE, idempotency_key="k8"), Unknown)


def test_an_unknown_psp_status_maps_to_unknown() -> None:
    body = {
        "id": "psp_1",
        "reference": "pay_1",
        "status": "pending_3ds",
        "amount": 1000,
        "currency": "EUR",
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(201, json=body))
    psp = client("http://psp", transport=transport)
    result = psp.authorize(SALE, idempotency_key="k9")
    assert isinstance(result, Answered) and result.value.status is PspPaymentStatus.UNKNOWN
