"""What the operator console reads besides the API's own queries: a key by
its id (re-checked on every console request), payments by creation date, the
PSP callbacks about a merchant's objects, and the last hour's figures.

Payments have no index on their creation time, but their ids are ULIDs
(`payments.ids`): a time bound is also an id bound, which the
(merchant_id, id) index serves. The created_at test stays, for precision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from payments.ids import new_id
from store.rows import PAYMENT_COLUMNS, PaymentRow
from store.webhook_inbox import InboxRow

# An id and its created_at are both taken from the gateway's clock within a
# moment of each other; a minute either way is a margin, not a tolerance.
_ID_MARGIN = timedelta(minutes=1)
_INBOX_COLUMNS = ", ".join(
    f"i.{column}"
    for column in (
        "id",
        "provider",
        "webhook_id",
        "event_type",
        "reference",
        "payload",
        "status",
        "attempts",
        "last_error",
        "received_at",
        "updated_at",
    )
)


def id_at(prefix: str, moment: datetime) -> str:
    """The smallest id of this prefix that can be made at `moment`."""
    made = new_id(prefix, now_ms=int(moment.timestamp() * 1000))
    return made[: len(prefix) + 11] + "0" * 16


async def search_payments(
    conn: AsyncConnection[Any],
    merchant_id: str,
    *,
    order_id: str | None,
    status: str | None,
    created_from: datetime | None,
    created_before: datetime | None,
    limit: int,
    starting_after: str | None,
) -> list[PaymentRow]:
    """A page of the merchant's payments, newest first, paged on the id."""
    clauses = ["merchant_id = %(merchant_id)s"]
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": limit}
    if order_id is not None:
        clauses.append("order_id = %(order_id)s")
        params["order_id"] = order_id
    if status is not None:
        clauses.append("status = %(status)s")
        params["status"] = status
    if created_from is not None:
        clauses += ["id >= %(id_from)s", "created_at >= %(created_from)s"]
        params |= {"id_from": id_at("pay", created_from - _ID_MARGIN), "created_from": created_from}
    if created_before is not None:
        clauses += ["id < %(id_before)s", "created_at < %(created_before)s"]
        params |= {
            "id_before": id_at("pay", created_before + _ID_MARGIN),
            "created_before": created_before,
        }
    if starting_after is not None:
        clauses.append("id < %(starting_after)s")
        params["starting_after"] = starting_after
    async with conn.cursor(row_factory=class_row(PaymentRow)) as cursor:
        await cursor.execute(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE {' AND '.join(clauses)}"
            " ORDER BY id DESC LIMIT %(limit)s",
            params,
        )
        return await cursor.fetchall()


async def merchant_inbox(
    conn: AsyncConnection[Any], merchant_id: str, limit: int
) -> list[InboxRow]:
    """The latest PSP callbacks about the merchant's payments and refunds. The
    inbox belongs to no merchant: a callback is theirs through its reference,
    and one whose reference is unknown is nobody's to see."""
    async with conn.cursor(row_factory=class_row(InboxRow)) as cursor:
        await cursor.execute(
            f"SELECT {_INBOX_COLUMNS} FROM webhook_inbox i"
            " LEFT JOIN payments p ON p.id = i.reference"
            " LEFT JOIN refunds r ON r.id = i.reference"
            " WHERE coalesce(p.merchant_id, r.merchant_id) = %s"
            " ORDER BY i.id DESC LIMIT %s",
            (merchant_id, limit),
        )
        return await cursor.fetchall()


@dataclass(frozen=True, slots=True)
class MinuteFigures:
    minute: datetime
    created: int
    # Seconds from creation to the PSP's first yes (AUTHORIZED or CAPTURED),
    # over the payments created in that minute that have one.
    p50: float | None
    p99: float | None


async def minute_figures(
    conn: AsyncConnection[Any], merchant_id: str, since: datetime
) -> list[MinuteFigures]:
    """Payments created per minute since `since`, with their latency."""
    async with conn.cursor(row_factory=class_row(MinuteFigures)) as cursor:
        await cursor.execute(
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
            {"merchant": merchant_id, "id_from": id_at("pay", since - _ID_MARGIN), "since": since},
        )
        return await cursor.fetchall()


async def status_mix(
    conn: AsyncConnection[Any], merchant_id: str, since: datetime
) -> dict[str, int]:
    """How many of the payments created since `since` are in each status now."""
    cursor = await conn.execute(
        "SELECT status, count(*) FROM payments WHERE merchant_id = %s AND id >= %s"
        " AND created_at >= %s GROUP BY status ORDER BY status",
        (merchant_id, id_at("pay", since - _ID_MARGIN), since),
    )
    return {str(status): int(count) for status, count in await cursor.fetchall()}
