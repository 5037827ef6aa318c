"""The ledger in Postgres: posting entries idempotently, reading balances and
entries, and verifying the books. Balance and immutability are enforced by the
database itself (migration 0005); this module never updates or deletes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.ids import new_id
from payments.ledger import Entry
from store.statements import Statement
from store.statements import Steps
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_row
from store.statements import fetch_tuples
from store.statements import fetch_value
from store.statements import store_function

_ENSURE_ACCOUNTS = (
    "INSERT INTO ledger_accounts (merchant_id, currency, kind)"
    " SELECT %s, currency, kind FROM unnest(%s::text[], %s::text[]) AS wanted(currency, kind)"
    " ON CONFLICT (merchant_id, currency, kind) DO NOTHING"
)
# The entry and every posting whose account exists, in one statement: the
# entry's id if it is new (nothing at all if its source was posted before),
# and which postings (by their place, from 1) found their account.
_POST_ENTRY = """
    WITH entry AS (
        INSERT INTO journal_entries
            (id, merchant_id, psp, source_type, source_id, payment_id, description)
        VALUES (%(entry_id)s, %(merchant_id)s, %(psp)s, %(source_type)s, %(source_id)s,
                %(payment_id)s, %(description)s)
        ON CONFLICT (source_type, source_id) DO NOTHING
        RETURNING id
    ), matched AS (
        SELECT p.n, a.id AS account_id, p.amount, p.currency
        FROM unnest(%(kinds)s::text[], %(currencies)s::text[], %(amounts)s::bigint[])
            WITH ORDINALITY AS p(kind, currency, amount, n)
        JOIN ledger_accounts a
            ON a.merchant_id = %(merchant_id)s AND a.currency = p.currency AND a.kind = p.kind
    ), posted AS (
        INSERT INTO postings (entry_id, account_id, amount, currency)
        SELECT entry.id, m.account_id, m.amount, m.currency FROM entry, matched m
    )
    SELECT (SELECT id FROM entry), (SELECT array_agg(n) FROM matched)
"""
_INSERT_POSTINGS = (
    "INSERT INTO postings (entry_id, account_id, amount, currency)"
    " SELECT %s, a.id, p.amount, p.currency"
    " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS p(kind, currency, amount)"
    " JOIN ledger_accounts a ON a.merchant_id = %s AND a.currency = p.currency AND a.kind = p.kind"
)


@store_function
def post_entry(merchant_id: str, entry: Entry, *, psp: str) -> Steps[bool]:
    """Write an entry of money a PSP took or paid out, in the caller's
    transaction; False if its source was posted before (nothing is posted twice).

    One round trip once the merchant's accounts in that currency exist; the
    first entry that needs an account opens it and posts what is left (the
    entry's balance is checked at commit, so its postings may come in two)."""
    postings = entry.postings
    row = yield from fetch_row(
        _POST_ENTRY,
        {
            "entry_id": new_id("je"),
            "merchant_id": merchant_id,
            "psp": psp,
            "source_type": entry.source_type,
            "source_id": entry.source_id,
            "payment_id": entry.payment_id,
            "description": entry.description,
            "kinds": [p.account.value for p in postings],
            "currencies": [p.currency for p in postings],
            "amounts": [p.amount for p in postings],
        },
    )
    assert row is not None
    entry_id, matched = row
    if entry_id is None:
        return False
    missing = [p for n, p in enumerate(postings, 1) if n not in (matched or ())]
    if missing:
        kinds = [p.account.value for p in missing]
        currencies = [p.currency for p in missing]
        yield from execute(_ENSURE_ACCOUNTS, (merchant_id, currencies, kinds))
        posted = yield from execute(
            _INSERT_POSTINGS,
            (entry_id, kinds, currencies, [p.amount for p in missing], merchant_id),
        )
        if posted != len(missing):
            raise RuntimeError(f"entry {entry_id}: {posted} of {len(missing)} postings")
    return True


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    kind: str
    balance: int


@store_function
def balances(merchant_id: str) -> Statement[list[Balance]]:
    return fetch_all(
        Balance,
        "SELECT a.currency, a.kind, coalesce(sum(p.amount), 0)::bigint AS balance"
        " FROM ledger_accounts a LEFT JOIN postings p ON p.account_id = a.id"
        " WHERE a.merchant_id = %s GROUP BY a.currency, a.kind ORDER BY a.currency, a.kind",
        (merchant_id,),
    )


@dataclass(frozen=True, slots=True)
class EntryView:
    id: str
    psp: str
    source_type: str
    source_id: str
    payment_id: str | None
    description: str
    created_at: datetime
    postings: list[dict[str, Any]]


@store_function
def entries(
    merchant_id: str,
    *,
    payment_id: str | None,
    limit: int,
    starting_after: str | None,
) -> Statement[list[EntryView]]:
    return fetch_all(
        EntryView,
        "SELECT e.id, e.psp, e.source_type, e.source_id, e.payment_id, e.description, e.created_at,"
        " json_agg(json_build_object('account', a.kind, 'amount', p.amount,"
        " 'currency', p.currency) ORDER BY p.id) AS postings"
        " FROM journal_entries e JOIN postings p ON p.entry_id = e.id"
        " JOIN ledger_accounts a ON a.id = p.account_id"
        " WHERE e.merchant_id = %(merchant)s"
        " AND (%(payment)s::text IS NULL OR e.payment_id = %(payment)s)"
        " AND (%(after)s::text IS NULL OR e.id < %(after)s)"
        " GROUP BY e.id ORDER BY e.id DESC LIMIT %(limit)s",
        {"merchant": merchant_id, "payment": payment_id, "after": starting_after, "limit": limit},
    )


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    failures: list[str]
    counted: int


@store_function
def verify() -> Steps[list[Finding]]:
    """Audit the books: each a check, what failed it, how many things it looked at."""
    findings = []
    totals = yield from fetch_tuples("SELECT currency, sum(amount) FROM postings GROUP BY currency")
    findings.append(
        Finding(
            "all postings sum to zero per currency (trial balance)",
            [f"{c}: {t}" for c, t in totals if t != 0],
            len(totals),
        )
    )
    unbalanced = yield from fetch_tuples(
        "SELECT entry_id, currency, sum(amount) FROM postings GROUP BY entry_id, currency"
        " HAVING sum(amount) <> 0 LIMIT 20"
    )
    thin = yield from fetch_tuples(
        "SELECT e.id FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id"
        " GROUP BY e.id HAVING count(p.id) < 2 LIMIT 20"
    )
    entry_count = yield from fetch_value("SELECT count(*) FROM journal_entries")
    findings.append(
        Finding(
            "every entry balances and has two postings or more",
            [f"{e} {c} {t}" for e, c, t in unbalanced]
            + [f"{e} has fewer than two" for (e,) in thin],
            int(entry_count or 0),
        )
    )
    captured = yield from fetch_tuples(
        "SELECT p.id, p.captured_amount, coalesce(sum(po.amount), 0)"
        " FROM payments p"
        " LEFT JOIN journal_entries e ON e.source_type = 'capture' AND e.source_id = p.id"
        " LEFT JOIN postings po ON po.entry_id = e.id AND po.amount > 0"
        " WHERE p.status IN ('CAPTURED', 'REFUNDED') OR e.id IS NOT NULL"
        " GROUP BY p.id, p.captured_amount HAVING p.captured_amount <> coalesce(sum(po.amount), 0)"
        " LIMIT 20"
    )
    payments = yield from fetch_value(
        "SELECT count(*) FROM payments WHERE status IN ('CAPTURED', 'REFUNDED')"
    )
    findings.append(
        Finding(
            "every captured payment's capture is posted, at its captured amount",
            [f"{p}: captured {c}, posted {posted}" for p, c, posted in captured],
            int(payments or 0),
        )
    )
    refunded = yield from fetch_tuples(
        "SELECT r.id, r.amount, coalesce(sum(po.amount), 0) FROM refunds r"
        " LEFT JOIN journal_entries e ON e.source_type = 'refund' AND e.source_id = r.id"
        " LEFT JOIN postings po ON po.entry_id = e.id AND po.amount > 0"
        " WHERE r.status = 'SUCCEEDED' OR e.id IS NOT NULL"
        " GROUP BY r.id, r.amount, r.status"
        " HAVING (r.status = 'SUCCEEDED') <> (coalesce(sum(po.amount), 0) = r.amount) LIMIT 20"
    )
    refund_count = yield from fetch_value("SELECT count(*) FROM refunds WHERE status = 'SUCCEEDED'")
    findings.append(
        Finding(
            "every succeeded refund is posted, at its amount, and no other",
            [f"{r}: amount {a}, posted {posted}" for r, a, posted in refunded],
            int(refund_count or 0),
        )
    )
    return findings
