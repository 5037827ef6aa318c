"""Reconciliation in Postgres: a report streamed in with COPY, its lines
classified set-wise (the rules of `payments.reconciliation`, in SQL), the
settlement of what matched, and the runs and breaks for the API.

An uploaded report is checked against the PSP's own data for its batches,
copied in beside it (`psp_settlement_lines`): a line the PSP's data does not
carry with the same figures is `unconfirmed`, and is neither settled nor
resolved."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from payments.card_data import contains_pan
from payments.ids import new_id
from store.errors import StoreError

_COPY = (
    "COPY {table} (batch, settlement_date, record_type, psp_reference, reference,"
    " payment_reference, gross, fee, net, currency) FROM STDIN WITH (FORMAT csv, HEADER true)"
)
_COPY_REPORT = _COPY.format(table="settlement_lines")
_COPY_PSP_DATA = _COPY.format(table="psp_settlement_lines")


class BadReport(StoreError):
    """The report could not be read; the message says where (line) and why."""


@dataclass(frozen=True, slots=True)
class ReconciliationRow:
    id: str
    merchant_id: str | None
    source: str
    batch: str | None
    status: str
    error: str | None
    line_count: int
    counts: dict[str, int]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Starter:
    """Who started a run: an operator, through one of its keys. A run from the
    command line has none: whoever runs it has the database already."""

    operator_id: str
    api_key_id: str


_RUN_COLUMNS = (
    "id, merchant_id, source, batch, status, error, line_count, counts, created_at,"
    " started_at, finished_at"
)


@dataclass(frozen=True, slots=True)
class ResultRow:
    id: int
    line_number: int | None
    class_: str
    record_type: str
    reference: str
    psp_reference: str | None
    merchant_id: str | None
    resolved: bool
    reason: str | None


# --- runs ---------------------------------------------------------------------


_CREATE_RUN = (
    "INSERT INTO reconciliations (id, operator_id, api_key_id, source, batch)"
    " VALUES (%s, %s, %s, %s, %s)"
)


def _run_params(
    started_by: Starter | None, source: str, batch: str | None
) -> tuple[str | None, ...]:
    if started_by is None:
        return (new_id("rec"), None, None, source, batch)
    return (new_id("rec"), started_by.operator_id, started_by.api_key_id, source, batch)


async def create_run(
    conn: AsyncConnection[Any], started_by: Starter | None, source: str, batch: str | None
) -> str:
    params = _run_params(started_by, source, batch)
    await conn.execute(_CREATE_RUN, params)
    return str(params[0])


def create_run_sync(
    conn: Connection[Any], started_by: Starter | None, source: str, batch: str | None
) -> str:
    params = _run_params(started_by, source, batch)
    conn.execute(_CREATE_RUN, params)
    return str(params[0])


async def copy_report(conn: AsyncConnection[Any], run_id: str, chunks: AsyncIterator[bytes]) -> int:
    """Stream a report into the run's lines, in the caller's transaction;
    the CSV goes to Postgres untouched and never whole in memory."""
    try:
        await conn.execute("SELECT set_config('paystream.reconciliation_id', %s, true)", (run_id,))
        async with conn.cursor() as cursor, cursor.copy(_COPY_REPORT) as copy:
            async for chunk in chunks:
                await copy.write(chunk)
        return await _record_line_count(conn, run_id)
    except (psycopg.DataError, psycopg.errors.BadCopyFileFormat, psycopg.IntegrityError) as error:
        raise BadReport(_copy_error(error)) from None


def copy_report_sync(conn: Connection[Any], run_id: str, chunks: Iterable[bytes]) -> int:
    try:
        _copy_sync(conn, run_id, chunks, _COPY_REPORT)
        row = conn.execute(
            "UPDATE reconciliations SET line_count = (SELECT count(*) FROM settlement_lines"
            " WHERE reconciliation_id = %s) WHERE id = %s RETURNING line_count",
            (run_id, run_id),
        ).fetchone()
        return int(row[0]) if row else 0
    except (psycopg.DataError, psycopg.errors.BadCopyFileFormat, psycopg.IntegrityError) as error:
        raise BadReport(_copy_error(error)) from None


def report_batches(conn: Connection[Any], run_id: str, limit: int) -> list[str]:
    """The settlement batches a run's report names, at most `limit` of them."""
    rows = conn.execute(
        "SELECT DISTINCT batch FROM settlement_lines WHERE reconciliation_id = %s"
        " ORDER BY batch LIMIT %s",
        (run_id, limit),
    ).fetchall()
    return [str(row[0]) for row in rows]


def replace_psp_data(
    conn: Connection[Any], run_id: str, reports: Iterable[Iterable[bytes]]
) -> None:
    """The PSP's own reports of a run's batches, in place of any copied by an
    earlier try, in the caller's transaction."""
    conn.execute("DELETE FROM psp_settlement_lines WHERE reconciliation_id = %s", (run_id,))
    try:
        for chunks in reports:
            _copy_sync(conn, run_id, chunks, _COPY_PSP_DATA)
    except (psycopg.DataError, psycopg.errors.BadCopyFileFormat, psycopg.IntegrityError) as error:
        raise BadReport(f"the PSP's own report: {_copy_error(error)}") from None
    conn.execute("ANALYZE psp_settlement_lines")


def _copy_sync(conn: Connection[Any], run_id: str, chunks: Iterable[bytes], statement: str) -> None:
    conn.execute("SELECT set_config('paystream.reconciliation_id', %s, true)", (run_id,))
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)


async def _record_line_count(conn: AsyncConnection[Any], run_id: str) -> int:
    cursor = await conn.execute(
        "UPDATE reconciliations SET line_count = (SELECT count(*) FROM settlement_lines"
        " WHERE reconciliation_id = %s) WHERE id = %s RETURNING line_count",
        (run_id, run_id),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _copy_error(error: psycopg.Error) -> str:
    """Postgres says which line and column; the values themselves stay out."""
    context = error.diag.context or ""
    where = context.split(",", 1)[1].split(":", 1)[0].strip() if "," in context else "the report"
    return f"{where}: {error.diag.message_primary or 'unreadable'}"


# What the card-number detector (`payments.card_data`) could flag, for Postgres to
# hand over: 13 ASCII digits or more joined by nothing but separators from a group
# that starts with 2 to 6, any character outside ASCII (digits of other scripts) or
# a backslash (an escape). A strict superset, so the detector alone decides.
_SUSPECT = r"'(^|[^0-9])[2-6]([^0-9A-Za-z]*[0-9]){12}|[^\x01-\x7f]|\\'"
_THIRTEEN_DIGITS = "NOT BETWEEN -999999999999 AND 999999999999"
# Every value of a run's lines but the date (which COPY parsed), amounts as text.
# A line is tested first as a whole, its text columns joined by a letter (which
# joins no digits) and its amounts by size: one regular expression per line rather
# than nine, 1.8 s instead of 7.6 s on a million lines.
_CARD_NUMBER_SUSPECTS = (
    "SELECT value FROM settlement_lines l, unnest(ARRAY[l.batch, l.record_type,"
    " l.psp_reference, l.reference, l.payment_reference, l.gross::text, l.fee::text,"
    " l.net::text, l.currency]) AS value WHERE l.reconciliation_id = %s"
    " AND (concat_ws('x', l.batch, l.record_type, l.psp_reference, l.reference,"
    f" l.payment_reference, l.currency) ~ {_SUSPECT} OR l.gross {_THIRTEEN_DIGITS}"
    f" OR l.fee {_THIRTEEN_DIGITS} OR l.net {_THIRTEEN_DIGITS}) AND value ~ {_SUSPECT}"
)

# A report whose every line is a suspect (long numeric references) is fetched in
# hundreds of round trips per million, not ten thousand (psycopg's default is 100).
_SUSPECTS_PER_FETCH = 5_000


async def report_carries_card_number(conn: AsyncConnection[Any], run_id: str) -> bool:
    """Whether any value of an uploaded report, in any column, looks like a
    card number: a PAN must not be kept even where a reference should be.
    Call it in the transaction that copied the report, and roll back if so."""
    async with conn.cursor(name="card_number_suspects") as cursor:
        cursor.itersize = _SUSPECTS_PER_FETCH
        await cursor.execute(_CARD_NUMBER_SUSPECTS, (run_id,))
        async for (value,) in cursor:
            if contains_pan(value):
                return True
    return False


def report_carries_card_number_sync(conn: Connection[Any], run_id: str) -> bool:
    with conn.cursor(name="card_number_suspects") as cursor:
        cursor.itersize = _SUSPECTS_PER_FETCH
        cursor.execute(_CARD_NUMBER_SUSPECTS, (run_id,))
        return any(contains_pan(value) for (value,) in cursor)


def load_run(conn: Connection[Any], run_id: str) -> ReconciliationRow | None:
    with conn.cursor(row_factory=class_row(ReconciliationRow)) as cursor:
        cursor.execute(f"SELECT {_RUN_COLUMNS} FROM reconciliations WHERE id = %s", (run_id,))
        return cursor.fetchone()


def mark_run(
    conn: Connection[Any],
    run_id: str,
    status: str,
    *,
    error: str | None = None,
    counts: dict[str, int] | None = None,
) -> None:
    conn.execute(
        "UPDATE reconciliations SET status = %s, error = %s, counts = coalesce(%s, counts),"
        " started_at = CASE WHEN %s = 'running' THEN now() ELSE started_at END,"
        " finished_at = CASE WHEN %s IN ('completed', 'failed') THEN now() ELSE finished_at END"
        " WHERE id = %s",
        (status, error, Jsonb(counts) if counts is not None else None, status, status, run_id),
    )


async def get_run(conn: AsyncConnection[Any], run_id: str) -> ReconciliationRow | None:
    """Any run: runs are the platform's, read by operators only."""
    async with conn.cursor(row_factory=class_row(ReconciliationRow)) as cursor:
        await cursor.execute(f"SELECT {_RUN_COLUMNS} FROM reconciliations WHERE id = %s", (run_id,))
        return await cursor.fetchone()


async def list_runs(conn: AsyncConnection[Any], limit: int) -> list[ReconciliationRow]:
    async with conn.cursor(row_factory=class_row(ReconciliationRow)) as cursor:
        await cursor.execute(
            f"SELECT {_RUN_COLUMNS} FROM reconciliations ORDER BY id DESC LIMIT %s", (limit,)
        )
        return await cursor.fetchall()


async def list_breaks(
    conn: AsyncConnection[Any],
    run_id: str,
    *,
    class_: str | None,
    limit: int,
    starting_after: int | None,
) -> list[ResultRow]:
    async with conn.cursor(row_factory=class_row(ResultRow)) as cursor:
        await cursor.execute(
            "SELECT id, line_number, class AS class_, record_type, reference, psp_reference,"
            " merchant_id, resolved, reason FROM reconciliation_results"
            " WHERE reconciliation_id = %(run)s AND class NOT IN ('matched')"
            " AND (%(class)s::text IS NULL OR class = %(class)s)"
            " AND (%(after)s::bigint IS NULL OR id > %(after)s)"
            " ORDER BY id LIMIT %(limit)s",
            {"run": run_id, "class": class_, "after": starting_after, "limit": limit},
        )
        return await cursor.fetchall()


# --- matching (sync: the reconciliation actor and the CLI) -------------------

_CLASSIFY = """
WITH lines AS (
    SELECT l.*,
           row_number() OVER (PARTITION BY l.record_type, l.psp_reference, l.reference
                              ORDER BY l.id) AS nth,
           row_number() OVER (ORDER BY l.id) + 1 AS line_number
    FROM settlement_lines l WHERE l.reconciliation_id = %(run)s
), theirs AS (
    -- The PSP's own data for an uploaded report's batches; none for a PSP batch.
    SELECT DISTINCT ON (x.batch, x.record_type, x.psp_reference, x.reference) x.*
    FROM psp_settlement_lines x WHERE x.reconciliation_id = %(run)s
    ORDER BY x.batch, x.record_type, x.psp_reference, x.reference, x.id
), ours AS (
    SELECT l.*,
           coalesce(p.merchant_id, r.merchant_id) AS merchant_id,
           coalesce(p.id, r.id) IS NOT NULL AS found,
           CASE WHEN l.record_type = 'refund' THEN r.status ELSE p.status END AS our_status,
           CASE WHEN l.record_type = 'refund' THEN r.amount ELSE p.captured_amount END
               AS our_amount,
           CASE WHEN l.record_type = 'refund' THEN r.currency ELSE p.currency END::text
               AS our_currency,
           t.id IS NOT NULL AS psp_has_it,
           NOT %(checked)s OR (t.id IS NOT NULL AND t.settlement_date = l.settlement_date
               AND t.payment_reference = l.payment_reference AND t.gross = l.gross
               AND t.fee = l.fee AND t.net = l.net AND t.currency = l.currency) AS confirmed,
           t.settlement_date || ' gross ' || t.gross || ' fee ' || t.fee || ' net ' || t.net
               || ' ' || t.currency AS psp_says
    FROM lines l
    LEFT JOIN theirs t ON %(checked)s AND t.batch = l.batch AND t.record_type = l.record_type
        AND t.psp_reference = l.psp_reference AND t.reference = l.reference
    LEFT JOIN payments p ON l.record_type IN ('capture', 'chargeback') AND p.id = l.reference
    LEFT JOIN refunds r ON l.record_type = 'refund' AND r.id = l.reference
), classified AS (
    SELECT o.*, CASE
        WHEN o.nth > 1 THEN 'duplicate'
        WHEN NOT o.confirmed THEN 'unconfirmed'
        WHEN NOT o.found OR o.record_type NOT IN ('capture', 'refund', 'chargeback')
            THEN 'missing_internally'
        WHEN o.our_status = 'PENDING'
            THEN CASE WHEN o.record_type = 'chargeback' THEN 'missing_internally'
                      ELSE 'resolvable' END
        WHEN o.our_currency <> o.currency THEN 'currency_mismatch'
        WHEN o.record_type = 'refund' THEN CASE
            WHEN o.our_status <> 'SUCCEEDED' THEN 'missing_internally'
            WHEN o.our_amount = o.gross THEN 'matched' ELSE 'amount_mismatch' END
        WHEN o.our_status NOT IN ('CAPTURED', 'REFUNDED') THEN 'missing_internally'
        WHEN o.record_type = 'chargeback'
            THEN CASE WHEN o.gross <= o.our_amount THEN 'matched' ELSE 'amount_mismatch' END
        WHEN o.our_amount = o.gross THEN 'matched' ELSE 'amount_mismatch'
    END AS class
    FROM ours o
)
INSERT INTO reconciliation_results (reconciliation_id, line_id, line_number, class, record_type,
                                    reference, psp_reference, merchant_id, reason)
SELECT %(run)s, id, line_number, class, record_type, reference, psp_reference, merchant_id,
    CASE class
        WHEN 'duplicate' THEN 'the same ' || record_type || ' appears ' || nth || ' times'
        WHEN 'unconfirmed' THEN 'the PSP''s own data for batch ' || batch || CASE WHEN psp_has_it
            THEN ' says ' || psp_says || '; the report says ' || settlement_date || ' gross '
                || gross || ' fee ' || fee || ' net ' || net || ' ' || currency
            ELSE ' has no such ' || record_type END
        WHEN 'missing_internally' THEN CASE WHEN found
            THEN 'we have it as ' || our_status || ', not as a settled ' || record_type
            ELSE 'we have no record of ' || reference END
        WHEN 'currency_mismatch' THEN 'report ' || currency || ', ours ' || our_currency
        WHEN 'amount_mismatch' THEN 'report ' || gross || ' ' || currency || ', ours '
            || our_amount || ' ' || our_currency
    END
FROM classified
"""

_MISSING_AT_PSP = """
WITH days AS (
    SELECT DISTINCT settlement_date FROM settlement_lines WHERE reconciliation_id = %(run)s
), captures AS (
    SELECT p.id, p.psp_reference, p.merchant_id, 'capture' AS record_type
    FROM payment_events e JOIN payments p ON p.id = e.payment_id
    WHERE e.type = 'payment.captured'
      AND (e.created_at AT TIME ZONE 'UTC')::date IN (SELECT settlement_date FROM days)
), refunded AS (
    SELECT r.id, r.psp_reference, r.merchant_id, 'refund' AS record_type
    FROM refunds r
    WHERE r.status = 'SUCCEEDED'
      AND (r.updated_at AT TIME ZONE 'UTC')::date IN (SELECT settlement_date FROM days)
), ours AS (SELECT * FROM captures UNION ALL SELECT * FROM refunded)
INSERT INTO reconciliation_results (reconciliation_id, line_id, class, record_type, reference,
                                    psp_reference, merchant_id, reason)
SELECT %(run)s, NULL, 'missing_at_psp', o.record_type, o.id, o.psp_reference, o.merchant_id,
       'we settled this ' || o.record_type || '; the PSP''s report does not have it'
FROM ours o
WHERE NOT EXISTS (
    SELECT 1 FROM settlement_lines l WHERE l.reconciliation_id = %(run)s
      AND l.record_type = o.record_type AND l.reference = o.id)
  AND NOT EXISTS (
    SELECT 1 FROM settled_items s
    WHERE s.item_key = o.record_type || ':' || coalesce(o.psp_reference, '') || ':' || o.id)
"""

_SETTLE = """
WITH matched AS (
    SELECT l.record_type, l.psp_reference, l.reference, l.batch, l.currency, l.gross, l.fee,
           l.net, r.merchant_id,
           l.record_type || ':' || l.psp_reference || ':' || l.reference AS item_key,
           %(run)s || ':' || r.merchant_id || ':' || l.currency || ':' || l.batch AS settlement
    FROM reconciliation_results r JOIN settlement_lines l ON l.id = r.line_id
    WHERE r.reconciliation_id = %(run)s AND r.class = 'matched'
), fresh AS (
    INSERT INTO settled_items (item_key, settlement)
    SELECT item_key, settlement FROM matched
    ON CONFLICT (item_key) DO NOTHING
    RETURNING item_key
)
SELECT m.merchant_id, m.currency, m.settlement,
       sum(m.fee)::bigint,
       sum(CASE WHEN m.record_type = 'chargeback' THEN m.gross ELSE 0 END)::bigint,
       sum(m.net)::bigint,
       count(*)
FROM matched m JOIN fresh f ON f.item_key = m.item_key
GROUP BY m.merchant_id, m.currency, m.settlement
ORDER BY m.settlement
"""


def classify_lines(conn: Connection[Any], run_id: str, *, checked: bool) -> None:
    """`checked`: the report is an upload, held to the PSP's own data."""
    # Fresh statistics first and after: a report's lines were just copied in,
    # and a plan made on the empty tables' estimates nests loops over them
    # (minutes for 100,000 lines instead of a second).
    conn.execute("ANALYZE settlement_lines")
    conn.execute("DELETE FROM reconciliation_results WHERE reconciliation_id = %s", (run_id,))
    conn.execute(_CLASSIFY, {"run": run_id, "checked": checked})
    conn.execute("ANALYZE reconciliation_results")


@dataclass(frozen=True, slots=True)
class Resolvable:
    line_id: int
    record_type: str
    reference: str
    psp_reference: str
    gross: int
    currency: str


def resolvable_lines(conn: Connection[Any], run_id: str) -> list[Resolvable]:
    rows = conn.execute(
        "SELECT l.id, l.record_type, l.reference, l.psp_reference, l.gross, l.currency"
        " FROM reconciliation_results r JOIN settlement_lines l ON l.id = r.line_id"
        " WHERE r.reconciliation_id = %s AND r.class = 'resolvable'",
        (run_id,),
    ).fetchall()
    return [Resolvable(*row) for row in rows]


def mark_unconfirmed(conn: Connection[Any], run_id: str, reasons: dict[int, str]) -> None:
    """Lines the PSP's answer to a status inquiry did not bear out, by line id:
    breaks, with what the PSP said."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "UPDATE reconciliation_results SET class = 'unconfirmed', reason = %s"
            " WHERE reconciliation_id = %s AND line_id = %s",
            [(reason, run_id, line_id) for line_id, reason in reasons.items()],
        )


def mark_resolved(conn: Connection[Any], run_id: str, references: list[str]) -> None:
    conn.execute(
        "UPDATE reconciliation_results SET resolved = true"
        " WHERE reconciliation_id = %s AND reference = ANY(%s) AND class = 'matched'",
        (run_id, references),
    )


def record_missing_at_psp(conn: Connection[Any], run_id: str) -> None:
    conn.execute(_MISSING_AT_PSP, {"run": run_id})


@dataclass(frozen=True, slots=True)
class Settlement:
    merchant_id: str
    currency: str
    source_id: str
    fees: int
    chargebacks: int
    net: int
    items: int


def claim_settlements(conn: Connection[Any], run_id: str) -> list[Settlement]:
    """Mark this run's matched items settled (each item once, ever) and sum the
    new ones per merchant, currency and batch, for the caller to post."""
    rows = conn.execute(_SETTLE, {"run": run_id}).fetchall()
    return [Settlement(*row) for row in rows]


def result_counts(conn: Connection[Any], run_id: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT class, count(*), count(*) FILTER (WHERE resolved) FROM reconciliation_results"
        " WHERE reconciliation_id = %s GROUP BY class",
        (run_id,),
    ).fetchall()
    counts = {str(class_): int(count) for class_, count, _ in rows}
    counts["resolved"] = sum(int(resolved) for _, _, resolved in rows)
    return counts
