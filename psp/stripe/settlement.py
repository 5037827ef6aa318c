"""A settlement batch from Stripe's balance transactions, as paystream's
settlement CSV (`psp.settlement_csv`), so reconciliation reads Stripe's word
with the same rules and break classes as the simulator's report.

A batch is a UTC date; its lines are the balance transactions created that
day, newest first, each with its source expanded (the charge, refund or
dispute behind it):

    balance transaction                 line
    charge, payment                     capture: gross = amount, fee, net as Stripe booked them
    refund, payment_refund              refund: gross = -amount (positive), fee, net
    adjustment, reporting category      chargeback: gross = -amount, fee (Stripe's
      dispute (a dispute's)               dispute fee), net
    payout, stripe_fee, anything else   no line: a payout moves what the lines add
                                          up to; a fee not tied to a payment is no
                                          item of ours; neither has our reference

`psp_reference` is the PaymentIntent's id for captures and chargebacks (what
the payment keeps as its PSP reference), the refund's id for refunds;
`reference` is ours, read from metadata (the PaymentIntent's, fetched once per
intent; the refund's own). What carries none of ours keeps Stripe's id as its
reference, and reconciliation finds it missing internally.

localstripe books a partial capture as a charge of the full amount and a
refund of the rest (`mapping.released_at_capture`); Stripe books the captured
amount only. The capture line is written Stripe's way: the charge less what
was released, and the releasing refund gives no line. Its fees are always 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

import stripe
from stripe.params import BalanceTransactionListParams

from psp.protocol import ReportUnavailable
from psp.settlement_csv import csv_chunks
from psp.stripe.mapping import PAYMENT_ID_KEY
from psp.stripe.mapping import REFUND_ID_KEY
from psp.stripe.mapping import released_at_capture

Line = dict[str, Any]


def report(client: stripe.StripeClient, batch: str, *, filters: bool = True) -> Iterator[bytes]:
    """Raises ReportUnavailable for a batch that is not a date, and lets
    StripeError through (the connector says the report is unavailable).
    `filters`: the API filters lists by creation time (localstripe does not)."""
    return csv_chunks(lines(client, batch, filters=filters))


def lines(client: stripe.StripeClient, batch: str, *, filters: bool = True) -> Iterator[Line]:
    start, end = _day(batch)
    references = _References(client)
    for transaction in balance_transactions(client, start, end, filters=filters):
        line = settlement_line(transaction, batch, references)
        if line is not None:
            yield line


def _day(batch: str) -> tuple[int, int]:
    try:
        day = date.fromisoformat(batch)
    except ValueError:
        raise ReportUnavailable(f"a Stripe settlement batch is a UTC date, not {batch!r}") from None
    if day.isoformat() != batch:  # fromisoformat also takes 20261129
        raise ReportUnavailable(f"a Stripe settlement batch is a UTC date, not {batch!r}")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def balance_transactions(
    client: stripe.StripeClient, start: int, end: int, *, filters: bool = True
) -> Iterator[Mapping[str, Any]]:
    """Those created in [start, end), newest first (Stripe's list order).
    Without `filters` (localstripe refuses them: "Unexpected created") the
    list is read from the newest and left once past the day."""
    params: BalanceTransactionListParams = {"limit": 100, "expand": ["data.source"]}
    if filters:
        params["created"] = {"gte": start, "lt": end}
    for transaction in client.v1.balance_transactions.list(params).auto_paging_iter():
        created = int(transaction.created)
        if created >= end:
            continue
        if created < start:
            return
        yield transaction.to_dict()


def settlement_line(
    transaction: Mapping[str, Any], batch: str, references: _References
) -> Line | None:
    source = transaction.get("source")
    if not isinstance(source, Mapping):
        return None
    kind = transaction["type"]
    amount, fee, net = int(transaction["amount"]), int(transaction["fee"]), int(transaction["net"])
    line = {"batch": batch, "date": batch, "currency": str(transaction["currency"]).upper()}
    if kind in ("charge", "payment"):
        released = released_at_capture(source)
        intent = source.get("payment_intent") or source["id"]
        payment = references.payment(intent)
        gross, net = amount - released, net - released
        return line | _figures("capture", intent, payment, payment, gross, fee, net)
    if kind in ("refund", "payment_refund"):
        ours = (source.get("metadata") or {}).get(REFUND_ID_KEY)
        if ours is None and references.released_by_capture(source):
            return None
        intent = source.get("payment_intent") or source.get("charge") or source["id"]
        payment = references.payment(intent)
        reference = ours or source["id"]
        return line | _figures("refund", source["id"], reference, payment, -amount, fee, net)
    if kind == "adjustment" and transaction.get("reporting_category") == "dispute":
        intent = source.get("payment_intent") or source["id"]
        payment = references.payment(intent)
        return line | _figures("chargeback", intent, payment, payment, -amount, fee, net)
    return None


def _figures(
    kind: str,
    psp_reference: str,
    reference: str,
    payment_reference: str,
    gross: int,
    fee: int,
    net: int,
) -> Line:
    return {
        "type": kind,
        "psp_reference": psp_reference,
        "reference": reference,
        "payment_reference": payment_reference,
        "gross": gross,
        "fee": fee,
        "net": net,
    }


class _References:
    """Our payment ids by PaymentIntent, and charges, each fetched once per report."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client
        self._payments: dict[str, str] = {}
        self._charges: dict[str, Mapping[str, Any]] = {}

    def payment(self, intent_id: str) -> str:
        """Our payment id for a PaymentIntent; its own id when it is not ours
        (or the id names no PaymentIntent: a charge made without one)."""
        if intent_id not in self._payments:
            metadata: Mapping[str, Any] = {}
            if intent_id.startswith("pi_"):
                metadata = self._client.v1.payment_intents.retrieve(intent_id).to_dict()["metadata"]
            self._payments[intent_id] = str(metadata.get(PAYMENT_ID_KEY) or intent_id)
        return self._payments[intent_id]

    def released_by_capture(self, refund: Mapping[str, Any]) -> bool:
        """Whether a refund that is not ours is localstripe's booking of what
        a partial capture released: its charge has no `amount_captured`
        (Stripe's charges all do)."""
        charge_id = refund.get("charge")
        if not isinstance(charge_id, str):
            return False
        if charge_id not in self._charges:
            self._charges[charge_id] = self._client.v1.charges.retrieve(charge_id).to_dict()
        return "amount_captured" not in self._charges[charge_id]
