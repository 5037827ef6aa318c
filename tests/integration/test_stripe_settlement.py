"""A day of Stripe's balance transactions as paystream's settlement CSV:
payments made at localstripe, its balance transactions read through the
connector, the report streamed into Postgres by the same COPY as every
report and classified by the same rules.

localstripe shares one book across the session (and lists every day's
transactions at once), so each test looks at the lines of its own payments."""

from __future__ import annotations

import csv
import io
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from payments.operations import OperationKind
from payments.operations import psp_key
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import PspPayment
from psp.protocol import ReportUnavailable
from psp.settlement_csv import HEADER
from psp.stripe.connector import StripeConnector
from stack.localstripe import LocalStripe
from store.reconciliation import classify_lines
from store.reconciliation_runs import create_run
from store.settlement_reports import copy_report
from tests.conftest import migrated_database
from tests.support.localstripe import connector_for
from tests.support.servers import Servers

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def connector(localstripe: LocalStripe) -> Iterator[StripeConnector]:
    direct = connector_for(localstripe.url)
    yield direct
    direct.close()


def pay(connector: StripeConnector, *, capture: bool) -> PspPayment:
    payment_id = f"pay_{secrets.token_hex(8)}"
    result = connector.authorize(
        AuthorizeRequest(payment_id, 1000, "EUR", "pm_card_visa", capture=capture),
        idempotency_key=psp_key(OperationKind.AUTHORIZE, payment_id),
    )
    assert isinstance(result, Answered)
    return result.value


def refund(connector: StripeConnector, payment: PspPayment, amount: int) -> tuple[str, str]:
    """Our refund id and Stripe's."""
    refund_id = f"ref_{secrets.token_hex(6)}"
    result = connector.refund(
        payment.psp_reference,
        amount,
        refund_id,
        idempotency_key=psp_key(OperationKind.REFUND, refund_id),
    )
    assert isinstance(result, Answered)
    return refund_id, result.value.psp_reference


def report_lines(connector: StripeConnector, batch: str) -> list[dict[str, str]]:
    text = b"".join(connector.settlement_report(batch)).decode()
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == HEADER
    return list(reader)


def line(kind: str, psp_reference: str, reference: str, payment: str, gross: int) -> dict[str, Any]:
    net = gross if kind == "capture" else -gross
    return {
        "batch": TODAY,
        "date": TODAY,
        "type": kind,
        "psp_reference": psp_reference,
        "reference": reference,
        "payment_reference": payment,
        "gross": str(gross),
        "fee": "0",  # localstripe charges no fees
        "net": str(net),
        "currency": "EUR",
    }


def test_a_days_captures_and_refunds_are_lines_with_our_references_and_stripes_amounts(
    connector: StripeConnector,
) -> None:
    at_once = pay(connector, capture=True)
    later = pay(connector, capture=False)
    captured = connector.capture(
        later.psp_reference, 600, idempotency_key=psp_key(OperationKind.CAPTURE, later.reference)
    )
    assert isinstance(captured, Answered)
    (first, first_at_stripe), (second, second_at_stripe) = (
        refund(connector, at_once, 300),
        refund(connector, at_once, 200),
    )
    ours = {at_once.reference, later.reference}

    lines = [row for row in report_lines(connector, TODAY) if row["payment_reference"] in ours]

    in_order = sorted(lines, key=lambda row: (row["type"], row["gross"]))
    assert in_order == [
        line("capture", at_once.psp_reference, at_once.reference, at_once.reference, 1000),
        # Partially captured: 600 as Stripe books it, though localstripe
        # booked 1000 and a refund of 400, which gives no line.
        line("capture", later.psp_reference, later.reference, later.reference, 600),
        line("refund", second_at_stripe, second, at_once.reference, 200),
        line("refund", first_at_stripe, first, at_once.reference, 300),
    ]


def test_the_report_is_read_by_the_same_copy_and_rules_as_every_report(
    connector: StripeConnector, servers: Servers
) -> None:
    payment = pay(connector, capture=True)
    database = migrated_database(servers, f"paystream_stripe_{uuid.uuid4().hex[:10]}")

    with psycopg.connect(database, autocommit=True) as conn:
        with conn.transaction():
            run_id = create_run(conn, None, "psp", TODAY, psp="stripe")
            copy_report(conn, run_id, connector.settlement_report(TODAY))
            classify_lines(conn, run_id, checked=False)
        rows = conn.execute(
            "SELECT l.record_type, l.psp_reference, l.gross, l.fee, l.net, l.currency, r.class"
            " FROM settlement_lines l JOIN reconciliation_results r ON r.line_id = l.id"
            " WHERE l.reconciliation_id = %s AND l.reference = %s",
            (run_id, payment.reference),
        ).fetchall()

    # Our books know nothing of a payment made straight at Stripe: a break,
    # classified like any report's line the books do not have.
    assert rows == [("capture", payment.psp_reference, 1000, 0, 1000, "EUR", "missing_internally")]


def test_another_day_has_none_of_todays_lines(connector: StripeConnector) -> None:
    payment = pay(connector, capture=True)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    assert [
        row for row in report_lines(connector, yesterday) if row["reference"] == payment.reference
    ] == []


@pytest.mark.parametrize("batch", ["20261129", "not-a-date", "2026-11-29/../x", ""])
def test_a_batch_that_is_not_a_utc_date_is_unavailable(
    connector: StripeConnector, batch: str
) -> None:
    with pytest.raises(ReportUnavailable):
        b"".join(connector.settlement_report(batch))
