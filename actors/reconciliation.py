"""reconcile: match a PSP settlement report against our books.

A run reconciles one PSP's report (its `psp`), against that PSP's payments and
refunds only, and asks that PSP's connector for its data and its answers.

The report's lines are in Postgres already (streamed in with COPY by the
gateway or the CLI), or the actor streams them from the PSP. Matching is
set-wise SQL (`store.reconciliation`); what Python does per line is only the
rare resolution: a PENDING payment or refund the report shows settled is the
PSP's word, and is written as such (timeline source `reconciliation`). Then
the newly settled items are posted to the ledger, one entry per merchant,
currency and batch, each item once ever. A report run twice gives the same
classes and posts nothing new.

A report fetched from the PSP is trusted. An uploaded one (API or `paystream
reconcile FILE`) is an operator's claim about every merchant's money, so it
is held to the PSP's own word first: the PSP's report of each batch it names
is fetched and every line compared with it (set-wise, as matching), and a
PENDING item is resolved only from the PSP's answer to a status inquiry. A
PSP that cannot be asked now means a retry later, never a decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dramatiq
from psycopg_pool import ConnectionPool

from actors.errors import TryAgain
from actors.outcomes import Detail
from actors.outcomes import apply_payment_fact
from actors.outcomes import apply_refund_outcome
from actors.queues import PAYMENTS_QUEUE
from actors.queues import RECONCILE
from actors.runtime import runtime
from payments.ledger import settlement_entry
from payments.lifecycle import Captured
from payments.lifecycle import PspFact
from payments.status import EventSource
from payments.status import RefundStatus
from psp.facts import payment_fact
from psp.protocol import Answered
from psp.protocol import Connector
from psp.protocol import NotFound
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefund
from psp.protocol import PspRefundStatus
from psp.protocol import ReportUnavailable
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.protocol import UnknownConnector
from store.audit import acting
from store.audit import record
from store.audit import system
from store.db import connection
from store.ledger import post_entry
from store.reconciliation import Resolvable
from store.reconciliation import bulk_settings
from store.reconciliation import claim_settlements
from store.reconciliation import classify_lines
from store.reconciliation import mark_resolved
from store.reconciliation import mark_unconfirmed
from store.reconciliation import record_missing_at_psp
from store.reconciliation import resolvable_lines
from store.reconciliation import result_counts
from store.reconciliation_runs import get_run
from store.reconciliation_runs import mark_run
from store.settlement_reports import BadReport
from store.settlement_reports import copy_report
from store.settlement_reports import has_lines
from store.settlement_reports import replace_psp_data
from store.settlement_reports import report_batches
from store.settlement_reports import report_carries_card_number
from telemetry.metrics import reconciliation_lines

logger = logging.getLogger("paystream.reconciliation")
ACTOR = system("reconciliation")
# An upload is checked against the PSP's report of every batch it names: a
# month of daily batches is as much as one report should span.
MAX_UPLOAD_BATCHES = 31


class UncheckableReport(Exception):
    """An uploaded report that cannot be held to the PSP's own data."""


class LinesLost(Exception):
    """A run whose staged lines are gone: it failed, and says so."""


@dramatiq.actor(queue_name=PAYMENTS_QUEUE, actor_name=RECONCILE, time_limit=3_600_000)
def reconcile(run_id: str) -> None:
    services = runtime()
    with connection(services.pool) as conn:
        run = get_run(conn, run_id)
    if run is None or run.status in ("completed", "failed"):
        return
    try:
        psp = services.connectors[run.psp]
    except UnknownConnector as error:
        with connection(services.pool) as conn:
            mark_run(conn, run_id, "pending", error=str(error))
        raise TryAgain(f"reconciliation {run_id}: {error}") from None
    if run.source == "psp" and run.line_count == 0:
        assert run.batch is not None
        try:
            with connection(services.pool) as conn, conn.transaction():
                copy_report(conn, run_id, psp.settlement_report(run.batch))
                # The PSP's word on money, not on what it may send us: a card
                # number in its report is kept no more than in an upload.
                if report_carries_card_number(conn, run_id):
                    raise BadReport("it carries what looks like a card number")
        except ReportUnavailable as error:
            raise TryAgain(f"settlement report {run.batch}: {error}") from None
        except BadReport as error:
            with connection(services.pool) as conn:
                mark_run(conn, run_id, "failed", error=f"the PSP's report: {error}; nothing kept")
            logger.warning("reconciliation %s failed: the PSP's report: %s", run_id, error)
            return
    run_reconciliation(services.pool, psp, run_id)


def run_reconciliation(pool: ConnectionPool[Any], psp: Connector, run_id: str) -> dict[str, int]:
    """Check, classify, resolve, settle and count, with the connector of the
    run's PSP. The run ends completed or failed; or, when the PSP cannot be
    asked now, pending with the reason (`TryAgain` is raised for a later try)."""
    with connection(pool) as conn:
        run = get_run(conn, run_id)
        assert run is not None
        if run.psp != psp.name:
            raise ValueError(f"run {run_id} reconciles {run.psp}'s report, not {psp.name}'s")
        if run.line_count and not has_lines(conn, run_id):
            # Lines are staging (migration 0010): a crash of Postgres empties them.
            error = "its lines were lost in a database restart; load the report again"
            mark_run(conn, run_id, "failed", error=error)
            raise LinesLost(f"reconciliation {run_id}: {error}")
        mark_run(conn, run_id, "running")
    uploaded = run.source == "upload"
    try:
        if uploaded:
            _fetch_psp_data(pool, psp, run_id)
        counts = _reconcile(pool, psp, run_id, uploaded=uploaded)
    except TryAgain as error:
        with connection(pool) as conn:
            mark_run(conn, run_id, "pending", error=str(error)[:500])
        raise
    except Exception as error:
        with connection(pool) as conn:
            mark_run(conn, run_id, "failed", error=f"{type(error).__name__}: {error}"[:500])
        raise
    with connection(pool) as conn:
        mark_run(conn, run_id, "completed", counts=counts)
    for result, count in counts.items():
        if result != "resolved":  # a subset of the classes, not a class
            reconciliation_lines.labels(result).inc(count)
    return counts


def _fetch_psp_data(pool: ConnectionPool[Any], psp: Connector, run_id: str) -> None:
    """The PSP's own report of each batch the upload names, copied in beside it."""
    with connection(pool) as conn, conn.transaction():
        batches = report_batches(conn, run_id, MAX_UPLOAD_BATCHES + 1)
        if len(batches) > MAX_UPLOAD_BATCHES:
            raise UncheckableReport(
                f"an uploaded report may name at most {MAX_UPLOAD_BATCHES} settlement batches"
            )
        try:
            replace_psp_data(conn, run_id, (psp.settlement_report(b) for b in batches))
        except ReportUnavailable as error:
            raise TryAgain(f"the PSP's own settlement data: {error}") from None


def _reconcile(
    pool: ConnectionPool[Any], psp: Connector, run_id: str, *, uploaded: bool
) -> dict[str, int]:
    with connection(pool) as conn, conn.transaction():
        classify_lines(conn, run_id, checked=uploaded)
        resolvable = resolvable_lines(conn, run_id)
    if resolvable:
        resolved, denied, unanswered = _resolve(pool, psp, run_id, resolvable, uploaded=uploaded)
        logger.info("reconciliation %s resolved %d pending item(s)", run_id, len(resolved))
        if unanswered:
            raise TryAgain(f"the PSP did not answer a status inquiry: {unanswered}")
        with acting(pool, ACTOR) as conn:
            classify_lines(conn, run_id, checked=uploaded)
            mark_resolved(conn, run_id, resolved)
            mark_unconfirmed(conn, run_id, denied)
    with acting(pool, ACTOR) as conn:
        bulk_settings(conn)
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
                post_entry(conn, settlement.merchant_id, entry, psp=psp.name)
        counts = result_counts(conn, run_id)
        record(
            conn,
            merchant_id=None,
            action="reconciliation.matched",
            object_id=run_id,
            after=counts,
        )
        return counts


def _resolve(
    pool: ConnectionPool[Any],
    psp: Connector,
    run_id: str,
    lines: list[Resolvable],
    *,
    uploaded: bool,
) -> tuple[list[str], dict[int, str], str | None]:
    """Write what the PSP said of each PENDING item: the report's own line
    when the PSP sent the report, its answer to a status inquiry for an
    upload. Returns the references resolved, the lines the PSP did not bear
    out (with what it said), and the first inquiry left unanswered, if any."""
    resolved: list[str] = []
    denied: dict[int, str] = {}
    unanswered: str | None = None
    for line in lines:
        word = _inquire(psp, line) if uploaded else _reported(line)
        if isinstance(word, Retryable | Unknown):
            unanswered = unanswered or f"{line.reference}: {word.reason}"
        elif isinstance(word, str):
            denied[line.line_id] = f"the PSP's answer to a status inquiry: {word}"
        else:
            _write(pool, line, word, {"reconciliationId": run_id, **word.detail})
            resolved.append(line.reference)
    return resolved, denied, unanswered


@dataclass(frozen=True, slots=True)
class PspWord:
    """What the PSP said of a PENDING item, to write: a payment's fact (none
    for a refund, which can only have succeeded), its PSP reference, and how
    it was learned."""

    fact: PspFact | None
    psp_reference: str
    detail: dict[str, str]


def _reported(line: Resolvable) -> PspWord:
    fact = Captured(line.psp_reference, line.gross, line.gross)
    return PspWord(fact if line.record_type == "capture" else None, line.psp_reference, {})


def _inquire(psp: Connector, line: Resolvable) -> PspWord | str | Retryable | Unknown:
    """The PSP's answer, if it bears the line out; else what it said instead."""
    learned = {"learnedBy": "status_inquiry"}
    if line.record_type == "refund":
        refund = psp.find_refund(line.reference, line.psp_reference)
        if not isinstance(refund, Answered):
            return "no such refund" if isinstance(refund, NotFound) else refund
        said = _refund_says(refund.value, line)
        return said or PspWord(None, refund.value.psp_reference, learned)
    payment = psp.find_payment(line.reference, line.psp_reference)
    if not isinstance(payment, Answered):
        return "no such payment" if isinstance(payment, NotFound) else payment
    said = _payment_says(payment.value, line)
    return said or PspWord(
        payment_fact(payment.value, action_expires_in=None), payment.value.psp_reference, learned
    )


def _payment_says(answer: PspPayment, line: Resolvable) -> str | None:
    """None when the answer is the line's capture; else what it says."""
    if (
        answer.status is PspPaymentStatus.CAPTURED
        and (answer.reference, answer.psp_reference) == (line.reference, line.psp_reference)
        and (answer.captured_amount, answer.currency) == (line.gross, line.currency)
    ):
        return None
    return (
        f"{answer.status} as {answer.psp_reference},"
        f" captured {answer.captured_amount} {answer.currency}"
    )


def _refund_says(answer: PspRefund, line: Resolvable) -> str | None:
    if (
        answer.status is PspRefundStatus.SUCCEEDED
        and (answer.reference, answer.psp_reference) == (line.reference, line.psp_reference)
        and answer.amount == line.gross
    ):
        return None
    return f"{answer.status} as {answer.psp_reference}, {answer.amount}"


def _write(pool: ConnectionPool[Any], line: Resolvable, word: PspWord, detail: Detail) -> None:
    if line.record_type == "refund":
        apply_refund_outcome(
            pool,
            line.reference,
            RefundStatus.SUCCEEDED,
            source=EventSource.RECONCILIATION,
            psp_reference=word.psp_reference,
            detail=detail,
        )
    elif word.fact is not None:
        apply_payment_fact(
            pool, line.reference, word.fact, source=EventSource.RECONCILIATION, detail=detail
        )
