"""The ledger's guarantees, enforced by Postgres itself."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from payments.ledger import AccountKind
from payments.ledger import Entry
from payments.ledger import Posting
from payments.ledger import capture_entry
from store.ledger import post_entry
from store.ledger import verify
from tests.conftest import Merchant


def test_an_entry_posts_once_whatever_happens_to_its_source(
    db: psycopg.Connection, merchant: Merchant
) -> None:
    payment_id = f"pay_{uuid.uuid4().hex}"
    with db.transaction():
        assert post_entry(db, merchant.id, capture_entry(payment_id, 1000, "EUR"), psp="simulator")
        assert not post_entry(
            db, merchant.id, capture_entry(payment_id, 1000, "EUR"), psp="simulator"
        )
    count = db.execute("SELECT count(*) FROM journal_entries WHERE source_id = %s", (payment_id,))
    assert count.fetchone() == (1,)


def test_an_entry_needing_a_new_account_opens_it_and_posts_beside_the_accounts_that_exist(
    db: psycopg.Connection, merchant: Merchant
) -> None:
    # Given the merchant's EUR receivable and payable accounts (a capture opened them)
    with db.transaction():
        post_entry(
            db, merchant.id, capture_entry(f"pay_{uuid.uuid4().hex}", 500, "EUR"), psp="simulator"
        )
    # When an entry posts to them and to an account not opened yet
    source = uuid.uuid4().hex
    entry = Entry(
        "test",
        source,
        "three accounts",
        (
            Posting(AccountKind.PSP_RECEIVABLE, 1000, "EUR"),
            Posting(AccountKind.CHARGEBACKS, 200, "EUR"),
            Posting(AccountKind.MERCHANT_PAYABLE, -1200, "EUR"),
        ),
    )
    with db.transaction():
        assert post_entry(db, merchant.id, entry, psp="simulator")
    # Then every posting is written once, each to its own account
    rows = db.execute(
        "SELECT a.kind, p.amount FROM postings p JOIN journal_entries e ON e.id = p.entry_id"
        " JOIN ledger_accounts a ON a.id = p.account_id WHERE e.source_id = %s ORDER BY a.kind",
        (source,),
    ).fetchall()
    assert rows == [("chargebacks", 200), ("merchant_payable", -1200), ("psp_receivable", 1000)]


def test_the_database_refuses_an_entry_that_does_not_balance(
    database_url: str, merchant: Merchant
) -> None:
    lopsided = Entry(
        "test",
        uuid.uuid4().hex,
        "lopsided",
        (
            Posting(AccountKind.PSP_RECEIVABLE, 1000, "EUR"),
            Posting(AccountKind.MERCHANT_PAYABLE, -999, "EUR"),
        ),
    )
    with psycopg.connect(database_url) as conn:
        post_entry(conn, merchant.id, lopsided, psp="simulator")
        with pytest.raises(psycopg.errors.CheckViolation, match="does not balance"):
            conn.commit()


def test_balance_is_per_currency(database_url: str, merchant: Merchant) -> None:
    mixed = Entry(
        "test",
        uuid.uuid4().hex,
        "mixed",
        (
            Posting(AccountKind.PSP_RECEIVABLE, 1000, "EUR"),
            Posting(AccountKind.MERCHANT_PAYABLE, -1000, "USD"),
        ),
    )
    with psycopg.connect(database_url) as conn:
        post_entry(conn, merchant.id, mixed, psp="simulator")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.commit()


def test_an_entry_with_one_posting_is_refused(database_url: str, merchant: Merchant) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO journal_entries (id, merchant_id, psp, source_type, source_id,"
            " description) VALUES ('je_alone', %s, 'simulator', 'test', %s, 'alone')",
            (merchant.id, uuid.uuid4().hex),
        )
        with pytest.raises(psycopg.errors.CheckViolation, match="two postings"):
            conn.commit()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount = amount * 2",
        "DELETE FROM postings",
        "UPDATE journal_entries SET description = 'edited'",
        "DELETE FROM journal_entries",
        "TRUNCATE postings CASCADE",
        "TRUNCATE journal_entries CASCADE",
    ],
)
def test_posted_entries_can_never_be_changed_or_removed(
    db: psycopg.Connection, merchant: Merchant, statement: str
) -> None:
    with db.transaction():
        post_entry(
            db, merchant.id, capture_entry(f"pay_{uuid.uuid4().hex}", 500, "EUR"), psp="simulator"
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute(statement)


def test_verify_finds_a_captured_payment_whose_capture_was_never_posted(
    db: psycopg.Connection, merchant: Merchant
) -> None:
    payment_id = f"pay_{uuid.uuid4().hex}"
    db.execute(
        "INSERT INTO payments (id, merchant_id, order_id, amount, currency, status, capture_method,"
        " method_token, psp, authorized_amount, captured_amount, created_at, updated_at)"
        " VALUES (%s, %s, %s, 700, 'EUR', 'CAPTURED', 'automatic', 'tok_visa', 'simulator', 700,"
        " 700, now(), now())",
        (payment_id, merchant.id, payment_id),
    )
    findings = {f.check: f.failures for f in verify(db)}
    capture_check = next(check for check in findings if check.startswith("every captured payment"))
    assert any(payment_id in failure for failure in findings[capture_check])
    assert findings["all postings sum to zero per currency (trial balance)"] == []
