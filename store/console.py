"""What the operator console reads besides the API's own queries: the PSP
callbacks about a merchant's objects, and the last hour's figures (bounded on
the id as well as the creation time: see `store.payments.list_payments`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payments.ids import ID_CLOCK_MARGIN
from payments.ids import id_at
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import fetch_all
from store.statements import fetch_tuples
from store.statements import store_function
from store.webhook_inbox import InboxRow

_INBOX = columns(InboxRow, "i")


@store_function
def merchant_inbox(merchant_id: str, limit: int) -> Statement[list[InboxRow]]:
    """The latest PSP callbacks about the merchant's payments and refunds. The
    inbox belongs to no merchant: a callback is theirs through its reference,
    and one whose reference is unknown is nobody's to see."""
    return fetch_all(
        InboxRow,
        f"SELECT {_INBOX} FROM webhook_inbox i"
        " LEFT JOIN payments p ON p.id = i.reference"
        " LEFT JOIN refunds r ON r.id = i.reference"
        " WHERE coalesce(p.merchant_id, r.merchant_id) = %s"
        " ORDER BY i.id DESC LIMIT %s",
        (merchant_id, limit),
    )


@dataclass(frozen=True, slots=True)
class MinuteFigures:
    minute: datetime
    created: int
    # Seconds from creation to the PSP's first yes (AUTHORIZED or CAPTURED),
    # over the payments created in that minute that have one.
    p50: float | None
    p99: float | None


@store_function
def minute_figures(merchant_id: str, since: datetime) -> Statement[list[MinuteFigures]]:
    """Payments created per minute since `since`, with their latency."""
    return fetch_all(
        MinuteFigures,
        "SELECT date_trunc('minute', p.created_at) AS minute, count(*) AS created,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY o.seconds) AS p50,"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY o.seconds) AS p99"
        " FROM payments p LEFT JOIN LATERAL ("
        "  SELECT extract(epoch FROM min(e.created_at) - p.created_at)::float8 AS seconds"
        "  FROM payment_events e WHERE e.payment_id = p.id AND e.from_status = 'PENDING'"
        "  AND e.to_status IN ('AUTHORIZED', 'CAPTURED')) o ON true"
        " WHERE p.merchant_id = %(merchant)s AND p.id >= %(id_from)s"
        " AND p.created_at >= %(since)s"
        " GROUP BY 1 ORDER BY 1",
        {
            "merchant": merchant_id,
            "id_from": id_at("pay", since - ID_CLOCK_MARGIN),
            "since": since,
        },
    )


@store_function
def status_mix(merchant_id: str, since: datetime) -> Steps[dict[str, int]]:
    """How many of the payments created since `since` are in each status now."""
    rows = yield from fetch_tuples(
        "SELECT status, count(*) FROM payments WHERE merchant_id = %s AND id >= %s"
        " AND created_at >= %s GROUP BY status ORDER BY status",
        (merchant_id, id_at("pay", since - ID_CLOCK_MARGIN), since),
    )
    return {str(status): int(count) for status, count in rows}
