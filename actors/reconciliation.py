"""reconcile: match a PSP settlement report against our books.

The report's lines are in Postgres already (streamed in with COPY by the
gateway or the CLI), or the actor streams them from the PSP. Matching is
set-wise SQL (`store.reconciliation`); what Python does per line is only the
rare resolution: a PENDING payment or refund the report shows settled is the
PSP's word, and is written as such (timeline source `reconciliation`). Then
the newly settled items are posted to the ledger, one entry per merchant,
currency and batch, each item once ever. A report run twice gives the same
classes and posts nothing new.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from psycopg_pool import ConnectionPool

from actors.errors import TryAgain
from actors.outcomes import apply_payment_fact, apply_refund_outcome
from actors.queues import PAYMENTS_QUEUE, RECONCILE
from actors.runtime import runtime
from payments.ledger import settlement_entry
from payments.lifecycle import Captured
from payments.status import EventSource, RefundStatus
from paystream.metrics import reconciliation_lines
from psp.protocol import ReportUnavailable
from store.audit import acting, record, system
from store.db import sync_connection
from store.ledger import post_entry
from store.reconciliation import (
    claim_settlements,
    classify_lines,
    copy_report_sync,
    load_run,
    mark_resolved,
    mark_run,
    record_missing_at_psp,
    resolvable_lines,
    result_counts,
)

logger = logging.getLogger("paystream.reconciliation")
ACTOR = system("reconciliation")


@dramatiq.actor(queue_name=PAYMENTS_QUEUE, actor_name=RECONCILE, time_limit=3_600_000)
def reconcile(run_id: str) -> None:
    rt = runtime()
    with sync_connection(rt.pool) as conn:
        run = load_run(conn, run_id)
    if run is None or run.status in ("completed", "failed"):
        return
    if run.source == "psp" and run.line_count == 0:
        assert run.batch is not None
        try:
            with sync_connection(rt.pool) as conn, conn.transaction():
                copy_report_sync(conn, run_id, rt.psp.settlement_report(run.batch))
        except ReportUnavailable as error:
            raise TryAgain(f"settlement report {run.batch}: {error}") from None
    run_reconciliation(rt.pool, run_id)


def run_reconciliation(pool: ConnectionPool[Any], run_id: str) -> dict[str, int]:
    """Classify, resolve, settle and count; the run ends completed or failed."""
    with sync_connection(pool) as conn:
        mark_run(conn, run_id, "running")
    try:
        counts = _reconcile(pool, run_id)
    except Exception as error:
        with sync_connection(pool) as conn:
            mark_run(conn, run_id, "failed", error=f"{type(error).__name__}: {error}"[:500])
        raise
    with sync_connection(pool) as conn:
        mark_run(conn, run_id, "completed", counts=counts)
    for result, count in counts.items():
        if result != "resolved":  # a subset of the classes, not a class
            reconciliation_lines.labels(result).inc(count)
    return counts


def _reconcile(pool: ConnectionPool[Any], run_id: str) -> dict[str, int]:
    with sync_connection(pool) as conn, conn.transaction():
        classify_lines(conn, run_id)
        resolvable = resolvable_lines(conn, run_id)
    if resolvable:
        detail = {"reconciliationId": run_id}
        for line in resolvable:
            if line.record_type == "capture":
                fact = Captured(line.psp_reference, line.gross, line.gross)
                apply_payment_fact(
                    pool, line.reference, fact, source=EventSource.RECONCILIATION, detail=detail
                )
            else:
                apply_refund_outcome(
                    pool,
                    line.reference,
                    RefundStatus.SUCCEEDED,
                    source=EventSource.RECONCILIATION,
                    psp_reference=line.psp_reference,
                    detail=detail,
                )
        logger.info("reconciliation %s resolved %d pending item(s)", run_id, len(resolvable))
        with acting(pool, ACTOR) as conn:
            classify_lines(conn, run_id)
            mark_resolved(conn, run_id, [line.reference for line in resolvable])
    with acting(pool, ACTOR) as conn:
        record_missing_at_psp(conn, run_id)
        for settlement in claim_settlements(conn, run_id):
            entry = settlement_entry(
                settlement.source_id,
                settlement.currency,
                fees=settlement.fees,
                chargebacks=settlement.chargebacks,
                net=settlement.net,
            )
            if entry is not None:
                post_entry(conn, settlement.merchant_id, entry)
        counts = result_counts(conn, run_id)
        record(
            conn,
            merchant_id=None,
            action="reconciliation.matched",
            object_type="reconciliation",
            object_id=run_id,
            after=counts,
        )
        return counts
