"""After a faulty run, `paystream reconcile` on the simulator's report: zero
unexplained breaks, each injected discrepancy under its own class, nothing
left PENDING that the PSP settled, and `paystream ledger verify` passing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

from drill.runner import DrillOptions
from drill.runner import run_drill
from stack.description import StackInfo
from stack.launcher import Stack
from tests.support.faulty import knobs

CLASS_OF = {
    "missing": "missing_at_psp",
    "extra": "missing_internally",
    "amount_off": "amount_mismatch",
    "currency_off": "currency_mismatch",
    "duplicate": "duplicate",
}


def paystream(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paystream", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def create(info: StackInfo) -> str:
    body = {
        "orderId": uuid.uuid4().hex,
        "amount": 1234,
        "currency": "EUR",
        "methodToken": "tok_visa",
    }
    headers = {"Authorization": f"Bearer {info.api_key}", "Idempotency-Key": uuid.uuid4().hex}
    return str(
        httpx.post(f"{info.gateway_url}/payments", json=body, headers=headers).json()["paymentId"]
    )


def test_after_a_faulty_run_reconcile_explains_every_break_and_the_ledger_verifies(
    faulty_stack: Stack, info: StackInfo, tmp_path: Path
) -> None:
    drill = run_drill(info, DrillOptions(payments=30, seed=12, concurrency=16, settle_timeout=120))
    assert drill.passed, [c.failures for c in drill.checks if not c.passed]
    # Three captures nobody hears of: no answer, no webhook, inquiries unanswered.
    knobs(
        info,
        silentRate=1.0,
        timeoutRate=0,
        lostResponseRate=0,
        errorRate=0,
        webhookOnlyRate=0,
        hangMs=1500,
    )
    silent = [create(info) for _ in range(3)]
    time.sleep(2)
    knobs(
        info,
        silentRate=0.0,
        settlementMissingRows=1,
        settlementExtraRows=1,
        settlementAmountOff=1,
        settlementCurrencyOff=1,
        settlementDuplicateRows=1,
        seed=12,
    )
    with psycopg.connect(info.database_url) as conn:
        pending = conn.execute(
            "SELECT status FROM payments WHERE id = ANY(%s)", (silent,)
        ).fetchall()
    assert {row[0] for row in pending} == {"PENDING"}

    today = datetime.now(UTC).date().isoformat()
    result = tmp_path / "reconcile.json"
    reconciled = paystream(faulty_stack, "reconcile", "--psp-batch", today, "--json", str(result))
    assert reconciled.returncode == 0, reconciled.stderr
    outcome = json.loads(result.read_text())
    assert outcome["counts"]["resolved"] == 3

    injected = httpx.get(f"{info.simulator_url}/_admin/settlements/{today}").json()["discrepancies"]
    with psycopg.connect(info.database_url) as conn:
        found = conn.execute(
            "SELECT class, reference FROM reconciliation_results WHERE reconciliation_id = %s"
            " AND class <> 'matched'",
            (outcome["reconciliationId"],),
        ).fetchall()
        still_pending = conn.execute("SELECT id FROM payments WHERE status = 'PENDING'").fetchall()
    assert sorted(found) == sorted((CLASS_OF[d["kind"]], d["reference"]) for d in injected)
    assert len(injected) == 5
    book = httpx.get(f"{info.simulator_url}/_book").json()
    settled_at_psp = {c["reference"] for c in book["charges"] if c["capturedAmount"] > 0}
    assert not settled_at_psp & {row[0] for row in still_pending}

    verified = paystream(faulty_stack, "ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_reconcile_runs_the_named_psps_report_and_refuses_a_psp_not_run_here(
    faulty_stack: Stack, info: StackInfo, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date().isoformat()
    result = tmp_path / "reconcile.json"
    named = paystream(
        faulty_stack, "reconcile", "--psp-batch", today, "--psp", "simulator", "--json", str(result)
    )
    assert named.returncode == 0, named.stderr
    with psycopg.connect(info.database_url) as conn:
        run = conn.execute(
            "SELECT psp, source FROM reconciliations WHERE id = %s",
            (json.loads(result.read_text())["reconciliationId"],),
        ).fetchone()
    assert run == ("simulator", "psp")
    refused = paystream(faulty_stack, "reconcile", "--psp-batch", today, "--psp", "adyen")
    assert refused.returncode == 2
    assert "no PSP named adyen is configured" in refused.stdout + refused.stderr
