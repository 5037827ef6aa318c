"""paystream's settlement CSV, the one format reconciliation reads, whichever
PSP a report comes from (the simulator's book, Stripe's balance transactions):

    batch,date,type,psp_reference,reference,payment_reference,gross,fee,net,currency

`type` is capture, refund or chargeback; `reference` is ours (the payment id
for captures and chargebacks, the refund id for refunds); amounts are integers
of minor units, `gross` and `fee` positive, `net` what the line adds to the
payout (negative for refunds and chargebacks); `currency` is upper case.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

HEADER = (
    "batch",
    "date",
    "type",
    "psp_reference",
    "reference",
    "payment_reference",
    "gross",
    "fee",
    "net",
    "currency",
)


def csv_chunks(rows: Iterable[Mapping[str, Any]], chunk_rows: int = 5_000) -> Iterator[bytes]:
    """The rows as CSV, header first, in chunks of `chunk_rows` lines: a
    report is streamed, never held whole."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for number, row in enumerate(rows, 1):
        writer.writerow([row[column] for column in HEADER])
        if number % chunk_rows == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
