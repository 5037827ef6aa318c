"""What a chaos run proves beyond the drill's checks, with paystream's own
commands where it has them: the event log has no gaps, the PSP's settlement
report reconciles without a break, the ledger verifies and equals the PSP's
totals, and the audit chain verifies."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC
from datetime import datetime
from typing import Any

import psycopg

from drill.checks import Check
from drill.psps import PspUnderTest
from stack.description import StackInfo
from stack.launcher import Stack
from store.outbox import outbox_tally
from store.outbox import timeline_events_not_queued


def event_log_has_no_gaps(info: StackInfo) -> Check:
    check = Check(
        "the event log has no gaps: every transition has its event, published and taken in"
    )
    with psycopg.connect(info.database_url) as conn:
        missing = timeline_events_not_queued(conn)
        events = outbox_tally(conn)
    assert events is not None
    check.counts = {
        "events": events.events,
        "published": events.published,
        "taken in": events.fanned_out,
    }
    if missing:
        check.fail(f"{missing} transitions without an event")
    if not events.events == events.published == events.fanned_out:
        check.fail("some events were not published or not taken in")
    return check


def books(
    stack: Stack, info: StackInfo, psp: PspUnderTest, payment_ids: set[str], book: dict[str, Any]
) -> list[Check]:
    """Reconcile the PSP's report of today, then hold the ledger to the PSP's book."""
    today = datetime.now(UTC).date().isoformat()
    reconciled = Check("reconciliation of the PSP's report: every line matched, no break")
    with psycopg.connect(info.database_url) as conn:
        before = conn.execute("SELECT count(*) FROM reconciliations").fetchone()
    out = _cli(stack, "reconcile", "--psp", psp.name, "--psp-batch", today, "--json", "/dev/stdout")
    if out.returncode != 0:
        reconciled.fail(f"paystream reconcile failed: {out.stderr[-500:]}")
        return [reconciled]
    with psycopg.connect(info.database_url) as conn:
        run_id, counts = conn.execute(
            "SELECT id, counts FROM reconciliations ORDER BY id DESC LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        breaks = conn.execute(
            "SELECT class, reference, reason FROM reconciliation_results"
            " WHERE reconciliation_id = %s AND class <> 'matched' LIMIT 10",
            (run_id,),
        ).fetchall()
    reconciled.counts = {**counts, "runs before": int(before[0]) if before else 0}
    for class_, reference, reason in breaks:
        reconciled.fail(f"{class_} {reference}: {reason}")
    return [reconciled, _ledger_equals_the_psp(stack, info, psp, today, payment_ids, book)]


def _ledger_equals_the_psp(
    stack: Stack,
    info: StackInfo,
    psp: PspUnderTest,
    today: str,
    payment_ids: set[str],
    book: dict[str, Any],
) -> Check:
    ledger = Check("the ledger verifies, and its totals equal the PSP's settled totals")
    verified = _cli(stack, "ledger", "verify")
    if verified.returncode != 0:
        ledger.fail("paystream ledger verify failed: " + verified.stdout[-800:])
    theirs = _psp_totals(psp, today, payment_ids, book)
    ours = _ledger_totals(info.database_url)
    ledger.counts = {f"{name} (ours = PSP)": ours[name] for name in ours}
    for name in ours:
        if ours[name] != theirs[name]:
            ledger.fail(f"{name}: ledger {ours[name]}, PSP {theirs[name]}")
    return ledger


def _ledger_totals(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows_by_kind = conn.execute(
            "SELECT e.source_type || ':' || a.kind, sum(p.amount) FROM postings p"
            " JOIN journal_entries e ON e.id = p.entry_id"
            " JOIN ledger_accounts a ON a.id = p.account_id GROUP BY 1"
        ).fetchall()
    totals: dict[str, int] = {str(kind): int(total) for kind, total in rows_by_kind}
    return {
        "captured": int(totals.get("capture:psp_receivable", 0)),
        "refunded": int(totals.get("refund:refunds", 0)),
        "fees": int(totals.get("settlement:fees", 0)),
        "paid out": int(totals.get("settlement:bank", 0)),
    }


def _psp_totals(
    psp: PspUnderTest, today: str, payment_ids: set[str], book: dict[str, Any]
) -> dict[str, int]:
    """The PSP's side: its book for what was captured and refunded, its
    settlement report for the fees and the payout."""
    report = psp.settlement_report(today)
    rows = list(csv.DictReader(io.StringIO(report)))
    ours_at_psp = [c for c in book["charges"] if c["reference"] in payment_ids]
    charge_ids = {c["id"] for c in ours_at_psp}
    return {
        "captured": sum(c["capturedAmount"] for c in ours_at_psp),
        "refunded": sum(
            r["amount"]
            for r in book["refunds"]
            if r["status"] == "succeeded" and r["paymentId"] in charge_ids
        ),
        "fees": sum(int(r["fee"]) for r in rows),
        "paid out": sum(int(r["net"]) for r in rows),
    }


def audit_chain_verifies(stack: Stack) -> Check:
    check = Check("the audit chain verifies")
    out = _cli(stack, "audit", "verify")
    first_line = (out.stdout + out.stderr).strip().splitlines()[:1]
    check.counts = {"exit code": out.returncode}
    if out.returncode != 0:
        check.fail((out.stdout + out.stderr)[-800:])
    elif first_line:
        check.counts["sealed rows"] = (
            int(first_line[0].split()[2]) if first_line[0].startswith("audit log:") else 0
        )
    return check


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """`paystream ARGS` beside the stack, with its settings."""
    return subprocess.run(
        [sys.executable, "-m", "paystream", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=600,
    )
