"""Posting rules: what each money movement writes to the double-entry ledger.
Pure functions, no I/O.

Amounts are signed minor units, a debit positive and a credit negative, and
every entry sums to zero per currency. Per merchant and currency:

    capture G                 Dr psp_receivable G        Cr merchant_payable G
    refund R                  Dr refunds R               Cr psp_receivable R
    settlement of a batch     Dr fees F, chargebacks C, bank N
                              Cr psp_receivable F + C + N

where, over the batch's newly settled items, F is the PSP's fees, C the
chargebacks and N the net paid out (negative when refunds and chargebacks
outweigh captures). The receivable is what the PSP owes: captured, less
refunded, less what it settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AccountKind(StrEnum):
    PSP_RECEIVABLE = "psp_receivable"
    MERCHANT_PAYABLE = "merchant_payable"
    FEES = "fees"
    REFUNDS = "refunds"
    CHARGEBACKS = "chargebacks"
    BANK = "bank"


@dataclass(frozen=True, slots=True)
class Posting:
    account: AccountKind
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry; (source_type, source_id) makes posting it idempotent."""

    source_type: str
    source_id: str
    description: str
    postings: tuple[Posting, ...]
    payment_id: str | None = None

    def balanced(self) -> bool:
        totals: dict[str, int] = {}
        for posting in self.postings:
            totals[posting.currency] = totals.get(posting.currency, 0) + posting.amount
        return all(total == 0 for total in totals.values())


def _entry(
    source_type: str,
    source_id: str,
    description: str,
    payment_id: str | None,
    currency: str,
    *amounts: tuple[AccountKind, int],
) -> Entry:
    postings = tuple(Posting(kind, amount, currency) for kind, amount in amounts if amount)
    return Entry(source_type, source_id, description, postings, payment_id)


# What a capture and a refund move, (into, out of): each a positive amount.
_TRANSFERS = {
    # The PSP owes the captured amount, and we owe it to the merchant.
    "capture": (AccountKind.PSP_RECEIVABLE, AccountKind.MERCHANT_PAYABLE),
    # A refund the PSP made: it owes that much less.
    "refund": (AccountKind.REFUNDS, AccountKind.PSP_RECEIVABLE),
}


def _transfer(
    kind: str, source_id: str, description: str, payment_id: str, amount: int, currency: str
) -> Entry:
    if amount <= 0:
        raise ValueError(f"a {kind} is a positive amount")
    into, out_of = _TRANSFERS[kind]
    return _entry(
        kind, source_id, description, payment_id, currency, (into, amount), (out_of, -amount)
    )


def capture_entry(payment_id: str, amount: int, currency: str) -> Entry:
    """A capture, whole or partial."""
    return _transfer(
        "capture", payment_id, f"capture of {payment_id}", payment_id, amount, currency
    )


def refund_entry(refund_id: str, payment_id: str, amount: int, currency: str) -> Entry:
    description = f"refund {refund_id} of {payment_id}"
    return _transfer("refund", refund_id, description, payment_id, amount, currency)


def settlement_entry(
    source_id: str, currency: str, *, fees: int, chargebacks: int, net: int
) -> Entry | None:
    """A batch's newly settled items for one merchant and currency; None when
    they move no money."""
    if fees < 0 or chargebacks < 0:
        raise ValueError("fees and chargebacks are not negative")
    entry = _entry(
        "settlement",
        source_id,
        f"settlement {source_id}",
        None,
        currency,
        (AccountKind.FEES, fees),
        (AccountKind.CHARGEBACKS, chargebacks),
        (AccountKind.BANK, net),
        (AccountKind.PSP_RECEIVABLE, -(fees + chargebacks + net)),
    )
    return entry if entry.postings else None
