"""The simulator's settlement reports: built from its book, and each
discrepancy knob putting in exactly its discrepancy."""

from pathlib import Path

import pytest

from psp.settlement_csv import HEADER
from psp.simulator.book import Book
from psp.simulator.settlement import CHARGEBACK_FEE
from psp.simulator.settlement import SettlementKnobs
from psp.simulator.settlement import build_report
from psp.simulator.settlement import capture_fee
from psp.simulator.settlement import render_csv


@pytest.fixture
def book(tmp_path: Path) -> Book:
    book = Book(tmp_path / "book.sqlite3")
    for number in range(10):
        book.authorize(
            reference=f"pay_{number}",
            amount=1000 + number,
            currency="EUR",
            token="tok_visa",
            capture=True,
        )
    charge = book.charges_for("pay_0")[0]
    book.refund(charge["id"], 400, "re_0")
    return book


def batch_of(book: Book) -> str:
    [batch] = book.batches()
    return batch


def test_a_report_has_every_capture_and_refund_of_its_day_with_fees_and_net(book: Book) -> None:
    report = build_report(book, batch_of(book), SettlementKnobs())
    captures = [r for r in report.rows if r["type"] == "capture"]
    refunds = [r for r in report.rows if r["type"] == "refund"]
    assert len(captures) == 10 and len(refunds) == 1 and report.discrepancies == []
    first = next(r for r in captures if r["reference"] == "pay_0")
    assert first["fee"] == capture_fee(1000) and first["net"] == 1000 - capture_fee(1000)
    assert refunds[0] == {
        **refunds[0],
        "reference": "re_0",
        "payment_reference": "pay_0",
        "gross": 400,
        "fee": 0,
        "net": -400,
    }


@pytest.mark.parametrize(
    ("knob", "kind"),
    [
        ("missing_rows", "missing"),
        ("amount_off", "amount_off"),
        ("currency_off", "currency_off"),
        ("duplicate_rows", "duplicate"),
        ("extra_rows", "extra"),
    ],
)
def test_each_discrepancy_knob_puts_in_exactly_its_discrepancy(
    book: Book, knob: str, kind: str
) -> None:
    clean = build_report(book, batch_of(book), SettlementKnobs())
    report = build_report(book, batch_of(book), SettlementKnobs(**{knob: 2}, seed=3))
    assert [d["kind"] for d in report.discrepancies] == [kind, kind]
    references = {d["reference"] for d in report.discrepancies}
    expected_rows = {"missing": -2, "duplicate": 2, "extra": 2}.get(kind, 0) + len(clean.rows)
    assert len(report.rows) == expected_rows
    if kind == "amount_off":
        changed = [
            r for r in report.rows if r["reference"] in references and r["type"] == "capture"
        ]
        assert all(r["gross"] == 1000 + int(r["reference"][4:]) + 1 for r in changed)
    if kind == "currency_off":
        assert {r["currency"] for r in report.rows if r["reference"] in references} == {"USD"}


def test_the_same_seed_and_batch_give_the_same_report(book: Book) -> None:
    knobs = SettlementKnobs(
        missing_rows=1, amount_off=1, duplicate_rows=1, chargeback_rate=0.3, seed=9
    )
    assert build_report(book, batch_of(book), knobs) == build_report(book, batch_of(book), knobs)


def test_chargebacks_come_back_with_their_fee_and_a_negative_net(book: Book) -> None:
    report = build_report(book, batch_of(book), SettlementKnobs(chargeback_rate=1.0))
    chargebacks = [r for r in report.rows if r["type"] == "chargeback"]
    assert len(chargebacks) == 10
    assert all(
        r["fee"] == CHARGEBACK_FEE and r["net"] == -(r["gross"] + CHARGEBACK_FEE)
        for r in chargebacks
    )


def test_the_csv_has_the_header_and_a_line_per_row(book: Book) -> None:
    report = build_report(book, batch_of(book), SettlementKnobs())
    lines = b"".join(render_csv(report, chunk_rows=3)).decode().splitlines()
    assert lines[0] == ",".join(HEADER) and len(lines) == len(report.rows) + 1
