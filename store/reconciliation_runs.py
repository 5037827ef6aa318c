"""Reconciliation runs: one per settlement report, started by an operator
(API) or from the command line, moved along by the reconciliation actor, and
read with their breaks. Runs are the platform's: none is scoped to a merchant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from payments.ids import new_id
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_by_id
from store.statements import store_function


@dataclass(frozen=True, slots=True)
class ReconciliationRow:
    id: str
    merchant_id: str | None
    source: str
    # Whose settlement report: the run is matched against this PSP's payments.
    psp: str
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


_RUN = columns(ReconciliationRow)
_RESULT = columns(ResultRow)


@store_function
def create_run(
    started_by: Starter | None, source: str, batch: str | None, *, psp: str
) -> Steps[str]:
    """A pending run of a PSP's report, `source`d from an upload or from the
    PSP itself (`batch`); its id."""
    run_id = new_id("rec")
    yield from execute(
        "INSERT INTO reconciliations (id, operator_id, api_key_id, source, psp, batch)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            run_id,
            started_by.operator_id if started_by else None,
            started_by.api_key_id if started_by else None,
            source,
            psp,
            batch,
        ),
    )
    return run_id


@store_function
def get_run(run_id: str) -> Statement[ReconciliationRow | None]:
    return fetch_by_id(ReconciliationRow, "reconciliations", run_id)


@store_function
def list_runs(limit: int) -> Statement[list[ReconciliationRow]]:
    return fetch_all(
        ReconciliationRow, f"SELECT {_RUN} FROM reconciliations ORDER BY id DESC LIMIT %s", (limit,)
    )


@store_function
def mark_run(
    run_id: str, status: str, *, error: str | None = None, counts: dict[str, int] | None = None
) -> Statement[int]:
    return execute(
        "UPDATE reconciliations SET status = %s, error = %s, counts = coalesce(%s, counts),"
        " started_at = CASE WHEN %s = 'running' THEN now() ELSE started_at END,"
        " finished_at = CASE WHEN %s IN ('completed', 'failed') THEN now() ELSE finished_at END"
        " WHERE id = %s",
        (status, error, Jsonb(counts) if counts is not None else None, status, status, run_id),
    )


@store_function
def list_breaks(
    run_id: str, *, class_: str | None, limit: int, starting_after: int | None
) -> Statement[list[ResultRow]]:
    """A run's lines (and items of ours) that did not match, in report order."""
    return fetch_all(
        ResultRow,
        f"SELECT {_RESULT} FROM reconciliation_results"
        " WHERE reconciliation_id = %(run)s AND class NOT IN ('matched')"
        " AND (%(class)s::text IS NULL OR class = %(class)s)"
        " AND (%(after)s::bigint IS NULL OR id > %(after)s)"
        " ORDER BY id LIMIT %(limit)s",
        {"run": run_id, "class": class_, "after": starting_after, "limit": limit},
    )
