"""The simulated bank: its book, its idempotency and its fault knobs."""

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from psp.simulator.app import create_app
from psp.simulator.book import Book
from psp.simulator.book import BookError
from psp.simulator.faults import Fate
from psp.simulator.faults import Faults
from psp.simulator.faults import FaultSettings
from psp.simulator.faults import outage_windows
from psp.simulator.service import SimulatorConfig

AUTH = {"Authorization": "Bearer sim-key"}


@pytest.fixture
def book(tmp_path: Path) -> Book:
    return Book(tmp_path / "book.sqlite3")


@pytest.fixture
def simulator(tmp_path: Path) -> TestClient:
    app = create_app(SimulatorConfig(str(tmp_path / "sim.sqlite3"), "sim-key", FaultSettings()))
    return TestClient(app)


def authorize(client: TestClient, key: str, **body: object) -> dict:
    payload = {"reference": "pay_1", "amount": 1000, "currency": "EUR", "token": "tok_visa"}
    response = client.post(
        "/v1/payments", json={**payload, **body}, headers={**AUTH, "Idempotency-Key": key}
    )
    return {"http": response.status_code, **response.json()}


def test_a_sale_books_one_captured_charge(book: Book) -> None:
    charge = book.authorize(
        reference="pay_1", amount=1000, currency="EUR", token="tok_visa", capture=True
    )
    assert (charge["status"], charge["capturedAmount"]) == ("captured", 1000)
    assert book.snapshot()["summary"]["approvedCharges"] == 1


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_decline", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_nobody_knows", "invalid_token"),
    ],
)
def test_a_token_decides_the_outcome(book: Book, token: str, code: str) -> None:
    charge = book.authorize(
        reference="pay_1", amount=1000, currency="EUR", token=token, capture=True
    )
    assert (charge["status"], charge["declineCode"]) == ("declined", code)


def test_partial_capture_then_refunds_up_to_the_capture_and_no_further(book: Book) -> None:
    charge = book.authorize(
        reference="pay_1", amount=1000, currency="EUR", token="tok_visa", capture=False
    )
    captured = book.capture(charge["id"], 600)
    assert (captured["status"], captured["capturedAmount"]) == ("captured", 600)
    book.refund(charge["id"], 400, "re_1")
    book.refund(charge["id"], 200, "re_2")
    with pytest.raises(BookError) as refused:
        book.refund(charge["id"], 1, "re_3")
    assert refused.value.code == "amount_exceeds_captured"
    assert book.charge(charge["id"])["refundedAmount"] == 600


def test_a_voided_authorization_cannot_be_captured(book: Book) -> None:
    charge = book.authorize(
        reference="pay_1", amount=1000, currency="EUR", token="tok_visa", capture=False
    )
    book.void(charge["id"])
    with pytest.raises(BookError):
        book.capture(charge["id"], None)


def test_the_book_reports_a_reference_charged_twice(book: Book) -> None:
    for _ in range(2):
        book.authorize(
            reference="pay_1", amount=1000, currency="EUR", token="tok_visa", capture=True
        )
    assert book.snapshot()["summary"]["chargedTwice"] == ["pay_1"]


def test_the_same_idempotency_key_replays_and_books_once(simulator: TestClient) -> None:
    first = authorize(simulator, "k1")
    second = authorize(simulator, "k1")
    assert first == second and first["http"] == 201
    assert simulator.get("/_book").json()["summary"]["charges"] == 1


def test_the_same_idempotency_key_with_another_body_is_refused(simulator: TestClient) -> None:
    authorize(simulator, "k1")
    assert authorize(simulator, "k1", amount=999)["code"] == "idempotency_key_reused"


def test_calls_without_the_api_key_are_refused(simulator: TestClient) -> None:
    assert simulator.post("/v1/payments", json={}).status_code == 401
    assert simulator.get("/v1/payments", params={"reference": "x"}).status_code == 401


def test_a_status_inquiry_finds_a_charge_by_our_reference(simulator: TestClient) -> None:
    authorize(simulator, "k1", reference="pay_42")
    found = simulator.get("/v1/payments", params={"reference": "pay_42"}, headers=AUTH).json()
    missing = simulator.get("/v1/payments", params={"reference": "pay_43"}, headers=AUTH).json()
    assert [c["reference"] for c in found["data"]] == ["pay_42"] and missing["data"] == []


def test_fault_knobs_change_at_run_time_and_an_error_books_nothing(simulator: TestClient) -> None:
    knobs = simulator.patch("/_admin/faults", json={"errorRate": 1.0, "seed": 7}).json()
    assert knobs["errorRate"] == 1.0
    assert authorize(simulator, "k1")["http"] == 500
    assert simulator.get("/_book").json()["summary"]["charges"] == 0
    simulator.patch("/_admin/faults", json={"errorRate": 0.0})
    assert authorize(simulator, "k1")["http"] == 201


def test_unknown_or_impossible_knobs_are_refused(simulator: TestClient) -> None:
    assert simulator.patch("/_admin/faults", json={"chaos": 1}).status_code == 400
    assert (
        simulator.patch("/_admin/faults", json={"errorRate": 0.7, "timeoutRate": 0.7}).status_code
        == 400
    )


def test_an_outage_window_fails_every_call_while_it_lasts(simulator: TestClient) -> None:
    simulator.patch("/_admin/faults", json={"outages": [{"startsIn": 0, "lasts": 60}]})
    assert authorize(simulator, "k1")["http"] == 503
    assert (
        simulator.get("/v1/payments", params={"reference": "pay_1"}, headers=AUTH).status_code
        == 503
    )


def test_the_same_seed_draws_the_same_fates() -> None:
    knobs = FaultSettings(error_rate=0.2, timeout_rate=0.2, lost_response_rate=0.2, seed=42)
    runs = []
    for _ in range(2):
        faults = Faults(knobs)
        runs.append([faults.draw()[0] for _ in range(200)])
    assert runs[0] == runs[1]
    counts = {fate: runs[0].count(fate) for fate in Fate}
    assert counts[Fate.ERROR] and counts[Fate.TIMEOUT] and counts[Fate.LOST_RESPONSE]
    assert counts[Fate.NORMAL] > 50


def test_outage_windows_at_start_are_read_from_starts_in_and_lasts() -> None:
    [first, second] = outage_windows(["0:5,10:2"])
    assert first.ends_at - first.starts_at == 5
    assert 9.9 < second.starts_at - first.starts_at < 10.1
    faults = Faults(FaultSettings(outages=(first,)))
    assert faults.in_outage() and faults.draw()[0] is Fate.OUTAGE
    with pytest.raises(ValueError):
        outage_windows(["soon:5"])
    with pytest.raises(ValueError):
        outage_windows(["5:0"])


def test_a_pinned_settlement_report_is_served_as_sent_and_only_for_a_date(
    simulator: TestClient,
) -> None:
    report = b"batch,date,type\n2026-11-24,2026-11-24,capture\n"
    pinned = simulator.put("/_admin/settlements/2026-11-24", content=report)
    assert pinned.json() == {"batch": "2026-11-24", "bytes": len(report)}
    assert simulator.get("/v1/settlements/2026-11-24", headers=AUTH).content == report
    assert simulator.get("/v1/settlements/2026-11-25", headers=AUTH).content.startswith(b"batch,")
    assert simulator.put("/_admin/settlements/..%2Fbook", content=b"x").status_code in (400, 404)
