"""The classification in SQL (`store.reconciliation.classify_lines`) gives
every line of a report the class `payments.reconciliation.classify` gives it,
on generated books, reports and (for an upload) the PSP's own data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace
from datetime import date

import psycopg
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from payments.reconciliation import Figures
from payments.reconciliation import Ours
from payments.reconciliation import classify
from payments.reconciliation import confirmed
from payments.status import PaymentStatus
from payments.status import RefundStatus
from store.reconciliation import classify_lines
from store.reconciliation_runs import create_run
from tests.conftest import Merchant
from tests.conftest import migrated_database
from tests.conftest import new_merchant
from tests.support.servers import Servers

CURRENCIES = ("EUR", "USD")
RECORD_TYPES = ("capture", "refund", "chargeback", "fee")
AMOUNTS = st.integers(min_value=1, max_value=40)


@dataclass(frozen=True)
class OurPayment:
    status: str
    captured: int
    currency: str


@dataclass(frozen=True)
class OurRefund:
    status: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Line:
    batch: str
    record_type: str
    psp_reference: str
    # ("payment" | "refund", index into the book) or ("unknown", 0)
    target: tuple[str, int]
    figures: Figures

    @property
    def item(self) -> tuple[str, str, str, tuple[str, int]]:
        return (self.batch, self.record_type, self.psp_reference, self.target)


@dataclass(frozen=True)
class Scenario:
    payments: list[OurPayment]
    refunds: list[OurRefund]
    lines: list[Line]
    # An upload is held to the PSP's own data; a PSP batch is not.
    checked: bool
    psp_data: list[Line]


# One figure of a PSP line off from the report's.
_OFF: dict[str, dict[str, object]] = {
    "gross": {"gross": 41},
    "fee": {"fee": 4},
    "net": {"net": 41},
    "currency": {"currency": "GBP"},
    "date": {"settlement_date": date(2026, 2, 1)},
    "ref": {"payment_reference": "p9"},
}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    payments = draw(
        st.lists(
            st.builds(
                OurPayment,
                st.sampled_from(list(PaymentStatus)),
                st.integers(min_value=0, max_value=40),
                st.sampled_from(CURRENCIES),
            ),
            max_size=4,
        )
    )
    refunds = draw(
        st.lists(
            st.builds(
                OurRefund,
                st.sampled_from(list(RefundStatus)),
                AMOUNTS,
                st.sampled_from(CURRENCIES),
            ),
            max_size=3,
        )
    )
    targets = [("unknown", 0)]
    targets += [("payment", i) for i in range(len(payments))]
    targets += [("refund", i) for i in range(len(refunds))]
    lines = [
        draw(line_about(target, payments, refunds))
        for target in draw(st.lists(st.sampled_from(targets), min_size=1, max_size=8))
    ]
    checked = draw(st.booleans())
    psp_data = []
    if checked:
        # The PSP's own lines: most of the report's as they are, some with a
        # figure off, some missing, some twice.
        for line in lines + draw(st.lists(st.sampled_from(lines), max_size=2)):
            off = draw(st.sampled_from(["none"] * 4 + ["gone", *_OFF]))
            if off != "gone":
                psp_data.append(replace(line, figures=replace(line.figures, **_OFF.get(off, {}))))
    return Scenario(payments, refunds, lines, checked, psp_data)


def line_about(
    target: tuple[str, int], payments: list[OurPayment], refunds: list[OurRefund]
) -> st.SearchStrategy[Line]:
    """A line about one of ours (or nobody's), mostly of the type, amount and
    currency we have for it, so that lines match about as often as they break."""
    kind, index = target
    types, gross, currency = st.sampled_from(RECORD_TYPES), AMOUNTS, st.sampled_from(CURRENCIES)
    if kind == "payment":
        payment = payments[index]
        types = st.sampled_from(["capture", "chargeback"]) | types
        gross = st.just(max(payment.captured, 1)) | gross
        currency = st.just(payment.currency) | currency
    elif kind == "refund":
        refund = refunds[index]
        types = st.just("refund") | types
        gross, currency = st.just(refund.amount) | gross, st.just(refund.currency) | currency
    return st.builds(
        Line,
        batch=st.sampled_from(["b1", "b2"]),
        record_type=types,
        psp_reference=st.sampled_from(["psp_a", "psp_b"]),
        target=st.just(target),
        figures=st.builds(
            Figures,
            settlement_date=st.sampled_from([date(2026, 1, 1), date(2026, 1, 2)]),
            payment_reference=st.sampled_from(["p1", "p2"]),
            gross=gross,
            fee=st.integers(min_value=0, max_value=3),
            net=AMOUNTS,
            currency=currency,
        ),
    )


@pytest.fixture(scope="module")
def own_database(servers: Servers) -> str:
    """A database of its own: the generated books are no other test's."""
    return migrated_database(servers, f"paystream_classify_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def shop(own_database: str) -> Merchant:
    return new_merchant(own_database)


@pytest.fixture(scope="module")
def conn(own_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(own_database, autocommit=True) as opened:
        yield opened


@settings(max_examples=100, deadline=None)
@given(scenario=scenarios())
def test_the_sql_classification_and_the_python_rules_give_every_line_the_same_class(
    conn: psycopg.Connection, shop: Merchant, scenario: Scenario
) -> None:
    ids = _write_book(conn, shop, scenario)
    run_id = create_run(conn, None, "upload" if scenario.checked else "psp", None, psp="simulator")
    line_ids = [
        _insert_line(conn, "settlement_lines", run_id, line, ids) for line in scenario.lines
    ]
    for line in scenario.psp_data:
        _insert_line(conn, "psp_settlement_lines", run_id, line, ids)

    classify_lines(conn, run_id, checked=scenario.checked)

    found = dict(
        conn.execute(
            "SELECT line_id, class FROM reconciliation_results WHERE reconciliation_id = %s",
            (run_id,),
        ).fetchall()
    )
    assert found == dict(zip(line_ids, _expected(scenario), strict=True))


def _expected(scenario: Scenario) -> list[str]:
    """The Python rules, line by line, in report order."""
    seen: set[tuple[str, str, tuple[str, int]]] = set()
    psp_first: dict[tuple[str, str, str, tuple[str, int]], Figures] = {}
    for psp_line in scenario.psp_data:
        psp_first.setdefault(psp_line.item, psp_line.figures)
    classes = []
    for line in scenario.lines:
        key = (line.record_type, line.psp_reference, line.target)
        first = key not in seen
        seen.add(key)
        is_confirmed = not scenario.checked or confirmed(line.figures, psp_first.get(line.item))
        classes.append(
            classify(
                line.record_type,
                line.figures.gross,
                line.figures.currency,
                _ours(scenario, line),
                first=first,
                confirmed=is_confirmed,
            ).value
        )
    return classes


def _ours(scenario: Scenario, line: Line) -> Ours | None:
    """Our record of a line's reference, as its type finds it: a payment for a
    capture or chargeback, a refund for a refund."""
    kind, index = line.target
    if kind == "payment" and line.record_type in ("capture", "chargeback"):
        payment = scenario.payments[index]
        return Ours(payment.status, payment.captured, payment.currency)
    if kind == "refund" and line.record_type == "refund":
        refund = scenario.refunds[index]
        return Ours(refund.status, refund.amount, refund.currency)
    return None


def _write_book(
    conn: psycopg.Connection, shop: Merchant, scenario: Scenario
) -> dict[tuple[str, int], str]:
    """Our payments and refunds (each refund of a payment of its own), by target."""
    ids = {("unknown", 0): f"pay_{uuid.uuid4().hex}"}
    for index, payment in enumerate(scenario.payments):
        ids[("payment", index)] = _insert_payment(
            conn, shop, payment.status, payment.captured, payment.currency
        )
    for index, refund in enumerate(scenario.refunds):
        parent = _insert_payment(conn, shop, "CAPTURED", 1000, refund.currency)
        ids[("refund", index)] = f"re_{uuid.uuid4().hex}"
        conn.execute(
            "INSERT INTO refunds (id, payment_id, merchant_id, amount, currency, status,"
            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, now(), now())",
            (
                ids[("refund", index)],
                parent,
                shop.id,
                refund.amount,
                refund.currency,
                refund.status,
            ),
        )
    return ids


def _insert_payment(
    conn: psycopg.Connection, shop: Merchant, status: str, captured: int, currency: str
) -> str:
    payment_id = f"pay_{uuid.uuid4().hex}"
    conn.execute(
        "INSERT INTO payments (id, merchant_id, order_id, amount, currency, status,"
        " capture_method, method_token, psp, authorized_amount, captured_amount, created_at,"
        " updated_at, action_expires_at) VALUES (%(id)s, %(merchant)s, %(id)s, %(amount)s,"
        " %(currency)s, %(status)s, 'automatic', 'tok_visa', 'simulator', %(captured)s,"
        " %(captured)s, now(), now(),"
        # A payment waiting for its customer knows until when (a CHECK holds it to that).
        " CASE WHEN %(status)s = 'REQUIRES_ACTION' THEN now() + interval '15 minutes' END)",
        {
            "id": payment_id,
            "merchant": shop.id,
            "amount": max(captured, 1),
            "currency": currency,
            "status": status,
            "captured": captured,
        },
    )
    return payment_id


def _insert_line(
    conn: psycopg.Connection,
    table: str,
    run_id: str,
    line: Line,
    ids: dict[tuple[str, int], str],
) -> int:
    f = line.figures
    row = conn.execute(
        f"INSERT INTO {table} (reconciliation_id, batch, settlement_date, record_type,"
        " psp_reference, reference, payment_reference, gross, fee, net, currency)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            run_id,
            line.batch,
            f.settlement_date,
            line.record_type,
            line.psp_reference,
            ids[line.target],
            f.payment_reference,
            f.gross,
            f.fee,
            f.net,
            f.currency,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
