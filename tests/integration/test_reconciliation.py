"""Reconciliation end to end below the API: payments driven through the
simulator, its settlement report streamed in with COPY, matched in Postgres,
posted to the ledger. Each test has a database of its own: a report covers
every payment of the gateway, so other tests' payments would be breaks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from actors.errors import TryAgain
from actors.operations import drive_operation
from actors.reconciliation import run_reconciliation
from payments.operations import OperationKind
from psp.http_client import HttpPsp, PspClientConfig
from store.ledger import verify
from store.migrate import migrate
from store.pool import open_pool
from store.reconciliation import (
    BadReport,
    copy_report_sync,
    create_run_sync,
    report_carries_card_number_sync,
)
from tests.conftest import Merchant, new_merchant
from tests.support.bank import Bank, running_bank
from tests.support.card_numbers import FULLWIDTH
from tests.support.payments import create_payment, request
from tests.support.servers import Servers
from tests.support.simulator import API_KEY

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def own_database(servers: Servers) -> str:
    name = f"paystream_rec_{uuid.uuid4().hex[:10]}"
    servers.postgres.ensure_database(name)
    url = servers.postgres.url(name)
    migrate(url)
    return url


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


def reconcile(bank: Bank, database_url: str, batch: str = TODAY) -> tuple[str, dict[str, int]]:
    psp = HttpPsp(PspClientConfig(base_url=bank.url, api_key=API_KEY))
    pool = open_pool(database_url, max_size=4)
    try:
        with pool.connection() as conn, conn.transaction():
            run_id = create_run_sync(conn, None, "psp", batch)
            copy_report_sync(conn, run_id, psp.settlement_report(batch))
        return run_id, run_reconciliation(pool, run_id)
    finally:
        pool.close()
        psp.close()


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
        run_id = create_run_sync(conn, None, "upload", None)
        copy_report_sync(conn, run_id, [report])


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
                run_id = create_run_sync(conn, None, "upload", None)
                copy_report_sync(conn, run_id, [report])
                assert report_carries_card_number_sync(conn, run_id) is carries
