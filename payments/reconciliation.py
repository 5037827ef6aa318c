"""Reconciliation rules: what a line of a PSP settlement report is, compared
with our books. Pure; the store applies the same rules set-wise in SQL
(`store.reconciliation`), and a property test holds the two to the same class
for every line of generated reports, books and PSP data
(tests/integration/test_classification.py).

    matched             we have it, same amount and currency
    missing_internally  the PSP settled something we have no record of
    missing_at_psp      we captured or refunded it, the report does not say so
    amount_mismatch     same item, other amount
    currency_mismatch   same item, other currency
    duplicate           the same item twice in the report; the second is a break
    unconfirmed         the PSP's own data does not confirm this line

A report fetched from the PSP is the PSP's word. An uploaded one is an
operator's claim about what the PSP said: each of its lines is held to the
PSP's own settlement data for its batch, and a line that data does not carry
(the same type, PSP reference and reference in the same batch) with the same
figures (`Figures`) is `unconfirmed`, neither settled nor resolved.

A capture line for a payment we still have PENDING (we never heard the PSP's
answer nor its webhook) is the PSP's word that it captured: the payment is
resolved to CAPTURED (`resolvable`), then matched. Likewise a refund line for
a refund still PENDING. From an upload, only once the PSP confirms it to a
status inquiry; what the PSP answers otherwise leaves the line `unconfirmed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class LineClass(StrEnum):
    MATCHED = "matched"
    MISSING_INTERNALLY = "missing_internally"
    MISSING_AT_PSP = "missing_at_psp"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    DUPLICATE = "duplicate"
    UNCONFIRMED = "unconfirmed"
    # Not a final class: resolved first, then classified again.
    RESOLVABLE = "resolvable"


# What a line ends as, in the order reports list them.
FINAL_CLASSES = tuple(c for c in LineClass if c is not LineClass.RESOLVABLE)
RECORD_TYPES = frozenset({"capture", "refund", "chargeback"})


@dataclass(frozen=True, slots=True)
class Ours:
    """Our record of what a line is about: a payment (capture, chargeback) or
    a refund."""

    status: str
    amount: int  # captured amount of a payment, amount of a refund
    currency: str


@dataclass(frozen=True, slots=True)
class Figures:
    """What a line says of its item: what an uploaded line must say as the
    PSP's own data says it to be confirmed."""

    settlement_date: date
    payment_reference: str
    gross: int
    fee: int
    net: int
    currency: str


def confirmed(reported: Figures, psp_data: Figures | None) -> bool:
    """Whether the PSP's own data for an uploaded line's batch (its first line
    for the same item, if any) bears the line out."""
    return psp_data == reported


def classify(
    record_type: str,
    gross: int,
    currency: str,
    ours: Ours | None,
    *,
    first: bool,
    confirmed: bool = True,
) -> LineClass:
    """`confirmed`: the PSP's own data carries the line with the same figures
    (always so for a report fetched from the PSP)."""
    if not first:
        return LineClass.DUPLICATE
    if not confirmed:
        return LineClass.UNCONFIRMED
    if ours is None or record_type not in RECORD_TYPES:
        return LineClass.MISSING_INTERNALLY
    if ours.status in ("PENDING", "REQUIRES_ACTION"):  # not decided yet: the PSP's word decides
        return LineClass.RESOLVABLE if record_type != "chargeback" else LineClass.MISSING_INTERNALLY
    if ours.currency != currency:
        return LineClass.CURRENCY_MISMATCH
    if record_type == "refund":
        if ours.status != "SUCCEEDED":
            return LineClass.MISSING_INTERNALLY
        return LineClass.MATCHED if ours.amount == gross else LineClass.AMOUNT_MISMATCH
    if ours.status not in ("CAPTURED", "REFUNDED"):
        return LineClass.MISSING_INTERNALLY
    if record_type == "chargeback":
        return LineClass.MATCHED if gross <= ours.amount else LineClass.AMOUNT_MISMATCH
    return LineClass.MATCHED if ours.amount == gross else LineClass.AMOUNT_MISMATCH


def item_key(record_type: str, psp_reference: str, reference: str) -> str:
    """One settled item, whichever batch or report carries it."""
    return f"{record_type}:{psp_reference}:{reference}"
