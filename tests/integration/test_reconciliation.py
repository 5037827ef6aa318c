"""Reconciliation end to end below the API: payments driven through the
simulator, its settlement report streamed in with COPY, matched in Postgres,
posted to the ledger. Each test has a database of its own: a report covers
every payment of the gateway, so other tests' payments would be breaks.

A report fetched from the PSP is its word; an uploaded one is an operator's
claim, held to the PSP's own data and answers before it moves any money."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from actors.errors import TryAgain
from actors.operations import drive_operation
from actors.reconciliation import LinesLost
from actors.reconciliation import reconcile as reconcile_actor
from actors.reconciliation import run_reconciliation
from actors.runtime import runtime
from payments.operations import OperationKind
from psp.protocol import Answered
from psp.protocol import InquiryResult
from psp.protocol import NotFound
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import Unknown
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from store.ledger import verify
from store.pool import open_pool
from store.reconciliation_runs import Starter
from store.reconciliation_runs import create_run
from store.settlement_reports import BadReport
from store.settlement_reports import copy_report
from store.settlement_reports import report_carries_card_number
from tests.conftest import Merchant
from tests.conftest import Operator
from tests.conftest import migrated_database
from tests.conftest import new_merchant
from tests.conftest import new_operator
from tests.support.bank import Bank
from tests.support.bank import running_bank
from tests.support.card_numbers import FULLWIDTH
from tests.support.card_numbers import holds_pan
from tests.support.payments import create_payment
from tests.support.payments import request
from tests.support.servers import Servers
from tests.support.simulator import API_KEY

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def own_database(servers: Servers) -> str:
    return migrated_database(servers, f"paystream_rec_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def bank(
    tmp_path: Path, own_database: str, redis_url: str, redis_client: redis.Redis
) -> Iterator[Bank]:
    with running_bank(tmp_path, own_database, redis_url) as bank:
        yield bank


@pytest.fixture
def shop(own_database: str) -> Merchant:
    return new_merchant(own_database)


def settle(database_url: str, merchant: Merchant, count: int = 6) -> list[str]:
    """Payments driven to CAPTURED, one of them partly refunded."""
    payments = []
    for _ in range(count):
        payment_id, authorize = create_payment(database_url, merchant)
        drive_operation.fn(authorize)
        payments.append(payment_id)
    drive_operation.fn(request(database_url, merchant, payments[0], OperationKind.REFUND, 250))
    return payments


def reconcile(
    bank: Bank, database_url: str, batch: str = TODAY, psp_name: str = "simulator"
) -> tuple[str, dict[str, int]]:
    """A run of the PSP `psp_name`'s batch, its report fetched from `bank`."""
    config = SimulatorClientConfig(base_url=bank.url, api_key=API_KEY)
    psp = SimulatorConnector(config, name=psp_name)
    pool = open_pool(database_url, max_size=4)
    try:
        with pool.connection() as conn, conn.transaction():
            run_id = create_run(conn, None, "psp", batch, psp=psp.name)
            copy_report(conn, run_id, psp.settlement_report(batch))
        return run_id, run_reconciliation(pool, psp, run_id)
    finally:
        pool.close()
        psp.close()


@pytest.fixture
def operator(own_database: str) -> Operator:
    return new_operator(own_database)


def start(database_url: str, operator: Operator, source: str, report: bytes = b"") -> str:
    """A run an operator starts: an upload of `report`, or a PSP batch (today's)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        by = Starter(operator.id, operator.key_id)
        run_id = create_run(conn, by, source, TODAY if source == "psp" else None, psp="simulator")
        if source == "upload":
            copy_report(conn, run_id, [report])
    return run_id


def report_of_today(bank: Bank) -> bytes:
    """The PSP's own report, as an operator would download it and upload it."""
    return httpx.get(
        f"{bank.url}/v1/settlements/{TODAY}", headers={"Authorization": f"Bearer {API_KEY}"}
    ).content


# What money and state are made of; a reconciliation writes none of it unless
# the PSP's own word says so.
BOOKS = (
    "payments",
    "payment_operations",
    "payment_events",
    "refunds",
    "ledger_accounts",
    "journal_entries",
    "postings",
    "settled_items",
)


def books(db: psycopg.Connection) -> dict[str, list[str]]:
    return {
        table: [row[0] for row in db.execute(f"SELECT x::text FROM {table} x ORDER BY 1")]
        for table in BOOKS
    }


def classes(db: psycopg.Connection, run_id: str) -> dict[str, tuple[str, str]]:
    """Each line's class and reason, by its reference."""
    rows = db.execute(
        "SELECT reference, class, reason FROM reconciliation_results"
        " WHERE reconciliation_id = %s AND line_id IS NOT NULL",
        (run_id,),
    ).fetchall()
    return {reference: (class_, reason) for reference, class_, reason in rows}


def captured(db: psycopg.Connection, payment_id: str) -> tuple[str, int]:
    row = db.execute(
        "SELECT psp_reference, captured_amount FROM payments WHERE id = %s", (payment_id,)
    ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def silent_capture(bank: Bank, database_url: str, merchant: Merchant, hold_ms: int) -> str:
    """A payment the PSP captured and we never heard of: still PENDING here.
    Its inquiries go unanswered for `hold_ms`."""
    payment_id, authorize = create_payment(database_url, merchant)
    bank.knobs(silentRate=1.0, hangMs=800, silentHoldMs=hold_ms)
    with pytest.raises(TryAgain):
        drive_operation.fn(authorize)
    bank.knobs(silentRate=0.0)
    assert bank.payment(payment_id)[0] == "PENDING"
    assert bank.charges(payment_id)[0]["capturedAmount"] == 1000
    return payment_id


class AskedAndAnswered:
    """The simulator, except that its answer to a payment inquiry is `answer`."""

    def __init__(self, psp: Any, answer: InquiryResult[PspPayment]) -> None:
        self._psp, self._answer = psp, answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._psp, name)

    def find_payment(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspPayment]:
        return self._answer


def breaks(db: psycopg.Connection, run_id: str) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT class, reference FROM reconciliation_results"
        " WHERE reconciliation_id = %s AND class <> 'matched' ORDER BY class, reference",
        (run_id,),
    ).fetchall()
    return [(c, r) for c, r in rows]


def balance(db: psycopg.Connection, merchant: Merchant, kind: str) -> int:
    row = db.execute(
        "SELECT coalesce(sum(p.amount), 0) FROM postings p JOIN ledger_accounts a"
        " ON a.id = p.account_id WHERE a.merchant_id = %s AND a.kind = %s",
        (merchant.id, kind),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def discrepancies(bank: Bank) -> list[dict[str, Any]]:
    return httpx.get(f"{bank.url}/_admin/settlements/{TODAY}").json()["discrepancies"]  # type: ignore[no-any-return]


def test_a_clean_report_matches_every_line_settles_the_receivable_and_verifies(
    bank: Bank, own_database: str, shop: Merchant
) -> None:
    settle(own_database, shop)
    run_id, counts = reconcile(bank, own_database)
    assert counts == {"matched": 7, "resolved": 0}
    assert breaks(bank.db, run_id) == []
    assert balance(bank.db, shop, "psp_receivable") == 0
    assert balance(bank.db, shop, "bank") > 0 and balance(bank.db, shop, "fees") > 0
    assert all(not finding.failures for finding in verify(bank.db))


def test_a_run_of_one_psps_report_matches_that_psps_payments_and_no_others(
    bank: Bank, own_database: str, shop: Merchant
) -> None:
    settle(own_database, shop)
    before = books(bank.db)
    # The same lines, as another PSP's report: none of them is that PSP's to settle,
    # and none of the simulator's payments is missing from it.
    run_id, counts = reconcile(bank, own_database, psp_name="beta")
    assert counts == {"missing_internally": 7, "resolved": 0}
    assert {reason for _, reason in classes(bank.db, run_id).values()} <= {
        f"we have no record of {reference}" for reference in classes(bank.db, run_id)
    }
    assert books(bank.db) == before
    _, counts = reconcile(bank, own_database)
    assert counts == {"matched": 7, "resolved": 0}
    psps = bank.db.execute(
        "SELECT DISTINCT psp FROM journal_entries WHERE merchant_id = %s", (shop.id,)
    )
    assert psps.fetchall() == [("simulator",)]


def test_the_same_report_twice_gives_the_same_result_and_posts_nothing_new(
    bank: Bank, own_database: str, shop: Merchant
) -> None:
    settle(own_database, shop)
    _, first = reconcile(bank, own_database)
    entries = bank.db.execute("SELECT count(*) FROM journal_entries").fetchone()
    _, second = reconcile(bank, own_database)
    assert first == second
    assert bank.db.execute("SELECT count(*) FROM journal_entries").fetchone() == entries


@pytest.mark.parametrize(
    ("knob", "injected", "found"),
    [
        ("settlementMissingRows", "missing", "missing_at_psp"),
        ("settlementExtraRows", "extra", "missing_internally"),
        ("settlementAmountOff", "amount_off", "amount_mismatch"),
        ("settlementCurrencyOff", "currency_off", "currency_mismatch"),
        ("settlementDuplicateRows", "duplicate", "duplicate"),
    ],
)
def test_each_discrepancy_is_reported_under_its_own_class_and_nothing_else(
    bank: Bank, own_database: str, shop: Merchant, knob: str, injected: str, found: str
) -> None:
    settle(own_database, shop)
    bank.knobs(seed=5, **{knob: 2})
    run_id, _ = reconcile(bank, own_database)
    expected = sorted((found, d["reference"]) for d in discrepancies(bank))
    assert [d["kind"] for d in discrepancies(bank)] == [injected, injected]
    assert breaks(bank.db, run_id) == expected


def test_a_run_whose_staged_lines_a_database_restart_emptied_fails_saying_so_and_moves_nothing(
    bank: Bank, own_database: str, shop: Merchant
) -> None:
    settle(own_database, shop)
    config = SimulatorClientConfig(base_url=bank.url, api_key=API_KEY)
    psp, pool = SimulatorConnector(config), open_pool(own_database, max_size=2)
    try:
        with pool.connection() as conn, conn.transaction():
            run_id = create_run(conn, None, "psp", TODAY, psp=psp.name)
            copy_report(conn, run_id, psp.settlement_report(TODAY))
        before = books(bank.db)
        # What crash recovery does to an unlogged table, for this run's lines.
        bank.db.execute("DELETE FROM settlement_lines WHERE reconciliation_id = %s", (run_id,))

        with pytest.raises(LinesLost):
            run_reconciliation(pool, psp, run_id)
    finally:
        pool.close()
        psp.close()
    status, error = bank.db.execute(
        "SELECT status, error FROM reconciliations WHERE id = %s", (run_id,)
    ).fetchone()  # type: ignore[misc]
    assert status == "failed" and "load the report again" in error
    assert books(bank.db) == before


def test_a_capture_we_never_heard_of_is_resolved_by_the_report(
    bank: Bank, own_database: str, shop: Merchant
) -> None:
    settle(own_database, shop, count=2)
    payment_id, authorize = create_payment(own_database, shop)
    bank.knobs(silentRate=1.0, hangMs=800)
    with pytest.raises(TryAgain):
        drive_operation.fn(authorize)
    bank.knobs(silentRate=0.0)
    with pytest.raises(TryAgain):  # the PSP stays silent: inquiries get nothing
        drive_operation.fn(authorize)
    assert bank.payment(payment_id)[0] == "PENDING"
    run_id, counts = reconcile(bank, own_database)
    assert counts["resolved"] == 1 and breaks(bank.db, run_id) == []
    assert bank.payment(payment_id)[:3] == ("CAPTURED", 1000, 1000)
    *_, (event, source, detail) = bank.timeline(payment_id)
    assert (event, source, detail["reconciliationId"]) == (
        "payment.captured",
        "reconciliation",
        run_id,
    )
    assert bank.operation(authorize)[0] == "succeeded"
    assert all(not finding.failures for finding in verify(bank.db))


def test_chargebacks_are_matched_and_posted(bank: Bank, own_database: str, shop: Merchant) -> None:
    settle(own_database, shop, count=3)
    bank.knobs(chargebackRate=1.0)
    run_id, counts = reconcile(bank, own_database)
    assert counts["matched"] == 3 + 1 + 3 and breaks(bank.db, run_id) == []
    assert balance(bank.db, shop, "chargebacks") == 3 * 1000


def test_an_unreadable_report_is_refused_with_its_line(own_database: str) -> None:
    report = (
        b"batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
        b"2026-11-24,2026-11-24,capture,psp_1,pay_1,pay_1,1000,39,961,EUR\n"
        b"2026-11-24,2026-11-24,capture,psp_2,pay_2,pay_2,lots,39,961,EUR\n"
    )
    with (
        psycopg.connect(own_database) as conn,
        pytest.raises(BadReport, match="line 3"),
        conn.transaction(),
    ):
        run_id = create_run(conn, None, "upload", None, psp="simulator")
        copy_report(conn, run_id, [report])


def test_a_forged_upload_moves_no_merchants_money_and_both_lines_are_breaks(
    bank: Bank, own_database: str, shop: Merchant, operator: Operator
) -> None:
    """The attack of issue #13: a capture line for another merchant's PENDING
    payment under a made-up PSP reference, and a line taking a real capture's
    whole amount as the fee."""
    settle(own_database, shop, count=2)
    victim = new_merchant(own_database)
    real = settle(own_database, victim, count=2)[1]
    pending, _ = create_payment(own_database, victim)
    psp_reference, amount = captured(bank.db, real)
    forged = (
        b"batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
        + f"{TODAY},{TODAY},capture,psp_forged_1,{pending},{pending},1000,39,961,EUR\n".encode()
        + f"{TODAY},{TODAY},capture,{psp_reference},{real},{real},{amount},{amount},0,EUR\n".encode()
    )
    before = books(bank.db)
    run_id = start(own_database, operator, "upload", forged)
    reconcile_actor.fn(run_id)
    assert books(bank.db) == before
    found = classes(bank.db, run_id)
    assert {reference: class_ for reference, (class_, _) in found.items()} == {
        pending: "unconfirmed",
        real: "unconfirmed",
    }
    assert found[pending][1] == f"the PSP's own data for batch {TODAY} has no such capture"
    assert f"fee {amount - (amount * 14 // 1000 + 25)}" not in found[real][1]
    assert f" fee {amount * 14 // 1000 + 25} " in found[real][1]
    assert all(not finding.failures for finding in verify(bank.db))
    # The real line, from the PSP itself, still settles.
    reconcile(bank, own_database)
    settled = bank.db.execute(
        "SELECT count(*) FROM settled_items WHERE item_key = %s",
        (f"capture:{psp_reference}:{real}",),
    ).fetchone()
    assert settled == (1,) and bank.payment(pending)[0] == "PENDING"


def test_an_upload_of_the_psps_own_report_matches_and_settles_as_the_report_itself_would(
    bank: Bank, own_database: str, shop: Merchant, operator: Operator
) -> None:
    settle(own_database, shop)
    run_id = start(own_database, operator, "upload", report_of_today(bank))
    reconcile_actor.fn(run_id)
    assert breaks(bank.db, run_id) == []
    assert balance(bank.db, shop, "psp_receivable") == 0 and balance(bank.db, shop, "fees") > 0


def test_an_uploaded_line_the_psp_confirms_resolves_the_pending_payment_from_its_answer(
    bank: Bank, own_database: str, shop: Merchant, operator: Operator
) -> None:
    settle(own_database, shop, count=1)
    payment_id = silent_capture(bank, own_database, shop, hold_ms=1500)
    run_id = start(own_database, operator, "upload", report_of_today(bank))
    with pytest.raises(TryAgain):  # the PSP cannot be asked yet: no answer is not a denial
        reconcile_actor.fn(run_id)
    pending = bank.db.execute(
        "SELECT status, error FROM reconciliations WHERE id = %s", (run_id,)
    ).fetchone()
    assert pending is not None and pending[0] == "pending" and payment_id in pending[1]
    assert bank.payment(payment_id)[0] == "PENDING"
    time.sleep(1.6)
    reconcile_actor.fn(run_id)
    assert bank.payment(payment_id)[:3] == ("CAPTURED", 1000, 1000)
    *_, (event, source, detail) = bank.timeline(payment_id)
    assert (event, source) == ("payment.captured", "reconciliation")
    assert detail["reconciliationId"] == run_id and detail["learnedBy"] == "status_inquiry"
    assert breaks(bank.db, run_id) == []
    counts = bank.db.execute("SELECT counts FROM reconciliations WHERE id = %s", (run_id,))
    assert counts.fetchone()[0]["resolved"] == 1  # type: ignore[index]
    assert all(not finding.failures for finding in verify(bank.db))


def voided(charge: dict[str, Any]) -> InquiryResult[PspPayment]:
    """The PSP's view of the charge, had it voided it instead of capturing."""
    return Answered(
        PspPayment(
            psp_reference=charge["id"],
            reference=charge["reference"],
            status=PspPaymentStatus.VOIDED,
            amount=charge["amount"],
            currency=charge["currency"],
            authorized_amount=charge["authorizedAmount"],
            captured_amount=0,
            refunded_amount=0,
        )
    )


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (lambda charge: NotFound(), "no such payment"),
        (voided, "voided as psp_"),
    ],
    ids=["not found", "voided"],
)
def test_an_uploaded_line_the_psp_denies_resolves_nothing_and_is_reported(
    bank: Bank,
    own_database: str,
    shop: Merchant,
    operator: Operator,
    answer: Callable[[dict[str, Any]], InquiryResult[PspPayment]],
    said: str,
) -> None:
    """The PSP's report carries the capture; its answer to an inquiry does not."""
    payment_id = silent_capture(bank, own_database, shop, hold_ms=0)
    before = books(bank.db)
    run_id = start(own_database, operator, "upload", report_of_today(bank))
    psp = AskedAndAnswered(runtime().connectors["simulator"], answer(bank.charges(payment_id)[0]))
    counts = run_reconciliation(runtime().pool, psp, run_id)
    assert books(bank.db) == before
    class_, reason = classes(bank.db, run_id)[payment_id]
    assert class_ == "unconfirmed" and counts["unconfirmed"] == 1 and counts["resolved"] == 0
    assert reason.startswith(f"the PSP's answer to a status inquiry: {said}"), reason


def test_an_inquiry_that_gets_no_answer_decides_nothing_and_the_run_waits_for_a_retry(
    bank: Bank, own_database: str, shop: Merchant, operator: Operator
) -> None:
    payment_id = silent_capture(bank, own_database, shop, hold_ms=0)
    before = books(bank.db)
    run_id = start(own_database, operator, "upload", report_of_today(bank))
    psp = AskedAndAnswered(runtime().connectors["simulator"], Unknown("no answer: ReadTimeout"))
    with pytest.raises(TryAgain, match="ReadTimeout"):
        run_reconciliation(runtime().pool, psp, run_id)
    assert books(bank.db) == before
    status = bank.db.execute("SELECT status FROM reconciliations WHERE id = %s", (run_id,))
    assert status.fetchone() == ("pending",) and bank.payment(payment_id)[0] == "PENDING"


def test_an_operators_psp_batch_run_still_resolves_and_posts_from_the_report(
    bank: Bank, own_database: str, shop: Merchant, operator: Operator
) -> None:
    """Trusted as before: resolved from the report's line even while the PSP
    leaves every inquiry about the payment unanswered."""
    settle(own_database, shop, count=2)
    payment_id = silent_capture(bank, own_database, shop, hold_ms=3_600_000)
    run_id = start(own_database, operator, "psp")
    reconcile_actor.fn(run_id)
    assert bank.payment(payment_id)[:3] == ("CAPTURED", 1000, 1000)
    assert breaks(bank.db, run_id) == []
    assert balance(bank.db, shop, "psp_receivable") == 0
    assert all(not finding.failures for finding in verify(bank.db))


def test_a_report_loaded_below_the_api_is_searched_for_card_numbers_in_every_column(
    database_url: str,
) -> None:
    header = b"batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
    clean = b"2026-11-24,2026-11-24,capture,psp_1,pay_1,pay_1,1000,39,961,EUR\n"
    with psycopg.connect(database_url) as conn:
        for report, carries in [
            (header + clean, False),
            (header + clean.replace(b"EUR", b"4111.1111.1111.1111"), True),
            (header + clean.replace(b"1000", b"4111111111111111"), True),
            (header + clean.replace(b"psp_1", f"tok{FULLWIDTH}".encode()), True),
            (header + clean.replace(b"pay_1,", b"4111\\n1111\\n1111\\n1111,", 1), True),
            (header + clean.replace(b"psp_1", b"C:\\reports\\2026"), False),
        ]:
            with conn.transaction(force_rollback=True):
                run_id = create_run(conn, None, "upload", None, psp="simulator")
                copy_report(conn, run_id, [report])
                assert report_carries_card_number(conn, run_id) is carries


def test_a_psp_report_carrying_a_card_number_fails_its_run_and_nothing_is_kept(
    bank: Bank, own_database: str, shop: Merchant, operator: Operator
) -> None:
    header = "batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency\n"
    carrying = f"{TODAY},{TODAY},capture,psp_1,4111.1111.1111.1111,pay_1,1000,39,961,EUR\n"
    pinned = httpx.put(
        f"{bank.url}/_admin/settlements/{TODAY}", content=(header + carrying).encode()
    )
    assert pinned.status_code < 300, pinned.text
    run_id = start(own_database, operator, "psp")
    reconcile_actor.fn(run_id)
    status, error = bank.db.execute(
        "SELECT status, error FROM reconciliations WHERE id = %s", (run_id,)
    ).fetchone()
    assert status == "failed" and "card number" in error and not holds_pan(error)
    lines = bank.db.execute(
        "SELECT count(*) FROM settlement_lines WHERE reconciliation_id = %s", (run_id,)
    ).fetchone()
    assert lines == (0,)
