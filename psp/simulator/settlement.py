"""Settlement reports: a CSV per batch (a UTC date) built from the book, as
a PSP sends them: every capture and refund of the day, fees, chargebacks,
and what is paid out. Knobs put known discrepancies in, so reconciliation
can be seen to find each one under its own class.

    batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency

`reference` is ours: the payment id for captures and chargebacks, the refund
id for refunds. Every choice below is drawn from the seed and the batch, so
fetching a report twice gives the same report.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from psp.settlement_csv import csv_chunks
from psp.simulator.book import Book

# The simulator's price list: 1.4 % + 25 minor units a capture; refunds are
# free; a chargeback costs 15.00.
CAPTURE_FEE_PER_MILLE, CAPTURE_FEE_FIXED, CHARGEBACK_FEE = 14, 25, 1500


@dataclass
class SettlementKnobs:
    """How many of each discrepancy a report carries, and how often a
    captured payment comes back as a chargeback."""

    missing_rows: int = 0
    extra_rows: int = 0
    amount_off: int = 0
    currency_off: int = 0
    duplicate_rows: int = 0
    chargeback_rate: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        counts = (
            self.missing_rows,
            self.extra_rows,
            self.amount_off,
            self.currency_off,
            self.duplicate_rows,
        )
        if any(count < 0 for count in counts):
            raise ValueError("discrepancy counts are not negative")
        if not 0.0 <= self.chargeback_rate <= 1.0:
            raise ValueError("chargeback_rate must be between 0 and 1")


@dataclass
class Report:
    rows: list[dict[str, Any]]
    discrepancies: list[dict[str, str]] = field(default_factory=list)


def capture_fee(gross: int) -> int:
    return min(gross, gross * CAPTURE_FEE_PER_MILLE // 1000 + CAPTURE_FEE_FIXED)


def _chance(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def build_report(book: Book, batch: str, knobs: SettlementKnobs) -> Report:
    rows: list[dict[str, Any]] = []
    for item in book.settled_items(batch):
        gross = int(item["gross"])
        row = {
            "batch": batch,
            "date": batch,
            "type": item["type"],
            "psp_reference": item["psp_reference"],
            "reference": item["reference"],
            "payment_reference": item["payment_reference"],
            "currency": item["currency"],
        }
        if item["type"] == "capture":
            fee = capture_fee(gross)
            rows.append({**row, "gross": gross, "fee": fee, "net": gross - fee})
            if _chance(knobs.seed, f"chargeback:{item['psp_reference']}") < knobs.chargeback_rate:
                rows.append(
                    {
                        **row,
                        "type": "chargeback",
                        "gross": gross,
                        "fee": CHARGEBACK_FEE,
                        "net": -(gross + CHARGEBACK_FEE),
                    }
                )
        else:
            rows.append({**row, "gross": gross, "fee": 0, "net": -gross})
    return _with_discrepancies(rows, batch, knobs)


def _with_discrepancies(rows: list[dict[str, Any]], batch: str, knobs: SettlementKnobs) -> Report:
    draw = random.Random(f"{knobs.seed}:{batch}")
    captures = [i for i, row in enumerate(rows) if row["type"] == "capture"]
    wanted = {
        "missing": knobs.missing_rows,
        "amount_off": knobs.amount_off,
        "currency_off": knobs.currency_off,
        "duplicate": knobs.duplicate_rows,
    }
    chosen = draw.sample(captures, min(len(captures), sum(wanted.values())))
    report = Report(rows=[dict(row) for row in rows])
    cursor = 0
    for kind, count in wanted.items():
        for index in chosen[cursor : cursor + count]:
            row = report.rows[index]
            report.discrepancies.append({"kind": kind, "reference": row["reference"]})
            if kind == "amount_off":
                row["gross"] += 1
                row["net"] += 1
            elif kind == "currency_off":
                row["currency"] = "USD" if row["currency"] != "USD" else "EUR"
        cursor += count
    missing = {d["reference"] for d in report.discrepancies if d["kind"] == "missing"}
    duplicated = {d["reference"] for d in report.discrepancies if d["kind"] == "duplicate"}
    final = []
    for row in report.rows:
        if row["type"] == "capture" and row["reference"] in missing:
            continue
        final.append(row)
        if row["type"] == "capture" and row["reference"] in duplicated:
            final.append(dict(row))
    for number in range(knobs.extra_rows):
        reference = f"pay_extra{draw.getrandbits(64):016x}"
        gross = draw.randrange(100, 10_000)
        fee = capture_fee(gross)
        final.append(
            {
                "batch": batch,
                "date": batch,
                "type": "capture",
                "psp_reference": f"psp_extra{number:04d}",
                "reference": reference,
                "payment_reference": reference,
                "gross": gross,
                "fee": fee,
                "net": gross - fee,
                "currency": "EUR",
            }
        )
        report.discrepancies.append({"kind": "extra", "reference": reference})
    report.rows = final
    return report


def render_csv(report: Report, chunk_rows: int = 5_000) -> Iterator[bytes]:
    """The report as CSV, in chunks, header first."""
    return csv_chunks(report.rows, chunk_rows)
