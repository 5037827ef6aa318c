"""`paystream chaos` as a user runs it, at CI size: its own stack, every fault
kind on a seeded schedule, every money invariant checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drill.chaos_plan import FAULT_KINDS
from drill.chaos_plan import ChaosOptions
from drill.chaos_plan import fault_schedule


def test_a_ci_sized_chaos_run_injects_every_fault_and_holds_every_invariant(
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "chaos.json"
    command = ["chaos", "--payments", "150", "--seed", "7", "--report", str(report_file)]
    run = subprocess.run(
        [sys.executable, "-m", "paystream", *command],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    said = run.stdout + run.stderr
    assert "replay with --seed 7" in said and "all invariants hold" in said
    report = json.loads(report_file.read_text())
    assert report["passed"] is True
    assert sorted(report["faultsInjected"]) == sorted(FAULT_KINDS)
    assert all(count >= 1 for count in report["faultsInjected"].values())
    assert report["schedule"] == [
        {"at": fault.at, "kind": fault.kind, "seconds": fault.seconds}
        for fault in fault_schedule(ChaosOptions(payments=150, seed=7))
    ]
    for fate in ("timeout", "lost_response", "error", "webhook_only", "callbacks duplicated"):
        assert report["pspFaults"][fate] > 0, report["pspFaults"]
    checks = {check["name"]: check for check in report["checks"]}
    assert all(check["passed"] for check in checks.values()), checks
    accepted = checks["every accepted payment exists once"]["counts"]
    assert accepted == {"requested": 150, "accepted": 150}
    resends = checks["every idempotent resend got the original answer"]["counts"]
    assert resends["resends"] > 0 and resends["matched"] == resends["resends"]
