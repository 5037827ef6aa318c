"""Settlement reports into Postgres: a report streamed in with COPY (the CSV
goes to Postgres untouched, never whole in memory), the PSP's own reports of
an upload's batches copied in beside it, and the check that no value of a
report looks like a card number."""

from __future__ import annotations

from collections.abc import AsyncIterable
from collections.abc import Iterable

import psycopg

from payments.card_data import contains_pan
from store.errors import StoreError
from store.statements import Statement
from store.statements import Steps
from store.statements import copy_chunks
from store.statements import execute
from store.statements import fetch_value
from store.statements import fetch_values
from store.statements import store_function

_COPY = (
    "COPY {table} (batch, settlement_date, record_type, psp_reference, reference,"
    " payment_reference, gross, fee, net, currency) FROM STDIN WITH (FORMAT csv, HEADER true)"
)
_COPY_REPORT = _COPY.format(table="settlement_lines")
_COPY_PSP_DATA = _COPY.format(table="psp_settlement_lines")
# What COPY says of a report it cannot read.
_UNREADABLE = (psycopg.DataError, psycopg.errors.BadCopyFileFormat, psycopg.IntegrityError)


class BadReport(StoreError):
    """The report could not be read; the message says where (line) and why."""


@store_function
def copy_report(run_id: str, chunks: Iterable[bytes] | AsyncIterable[bytes]) -> Steps[int]:
    """Stream a report into the run's lines, in the caller's transaction
    (chunks from an async iterable on an AsyncConnection only); returns how
    many lines it has."""
    try:
        yield from _copy(run_id, chunks, _COPY_REPORT)
        lines = yield from fetch_value(
            "UPDATE reconciliations SET line_count = (SELECT count(*) FROM settlement_lines"
            " WHERE reconciliation_id = %s) WHERE id = %s RETURNING line_count",
            (run_id, run_id),
        )
    except _UNREADABLE as error:
        raise BadReport(_copy_error(error)) from None
    return int(lines or 0)


@store_function
def has_lines(run_id: str) -> Statement[bool]:
    """Whether the run's lines are there (they are staging: a crash of
    Postgres empties them, migration 0010)."""
    return fetch_value(
        "SELECT EXISTS (SELECT 1 FROM settlement_lines WHERE reconciliation_id = %s)", (run_id,)
    )


@store_function
def report_batches(run_id: str, limit: int) -> Statement[list[str]]:
    """The settlement batches a run's report names, at most `limit` of them."""
    return fetch_values(
        "SELECT DISTINCT batch FROM settlement_lines WHERE reconciliation_id = %s"
        " ORDER BY batch LIMIT %s",
        (run_id, limit),
    )


@store_function
def replace_psp_data(run_id: str, reports: Iterable[Iterable[bytes]]) -> Steps[None]:
    """The PSP's own reports of a run's batches, in place of any copied by an
    earlier try, in the caller's transaction."""
    yield from execute("DELETE FROM psp_settlement_lines WHERE reconciliation_id = %s", (run_id,))
    try:
        for chunks in reports:
            yield from _copy(run_id, chunks, _COPY_PSP_DATA)
    except _UNREADABLE as error:
        raise BadReport(f"the PSP's own report: {_copy_error(error)}") from None
    yield from execute("ANALYZE psp_settlement_lines")


def _copy(
    run_id: str, chunks: Iterable[bytes] | AsyncIterable[bytes], statement: str
) -> Steps[None]:
    # A line's reconciliation_id defaults to the session's (migration 0006).
    yield from execute("SELECT set_config('paystream.reconciliation_id', %s, true)", (run_id,))
    yield from copy_chunks(statement, chunks)


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


@store_function
def report_carries_card_number(run_id: str) -> Steps[bool]:
    """Whether any value of a report, in any column, looks like a card
    number: a PAN must not be kept even where a reference should be. Call it
    in the transaction that copied the report, and roll back if so."""
    yield from execute(
        f"DECLARE card_number_suspects NO SCROLL CURSOR FOR {_CARD_NUMBER_SUSPECTS}", (run_id,)
    )
    found = False
    while not found and (
        suspects := (
            yield from fetch_values(f"FETCH {_SUSPECTS_PER_FETCH} FROM card_number_suspects")
        )
    ):
        found = any(contains_pan(value) for value in suspects)
    yield from execute("CLOSE card_number_suspects")
    return found
