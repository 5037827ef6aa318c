"""`paystream drill --psp stripe` as a user runs it, small: its own stack on
localstripe behind the Stripe proxy, which times out, drops and fails the
API's answers at the drill's rates; every invariant checked against
localstripe's own records (its PaymentIntents, charges and refunds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_small_drill_on_stripe_holds_every_invariant_against_localstripes_records(
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "drill.json"
    command = ["drill", "--psp", "stripe", "--payments", "40", "--seed", "5"]
    environment = {name: value for name, value in os.environ.items() if name != "STRIPE_API_KEY"}
    run = subprocess.run(
        [sys.executable, "-m", "paystream", *command, "--report", str(report_file)],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "drill on stripe: 40 payments" in " ".join((run.stdout + run.stderr).split())
    report = json.loads(report_file.read_text())
    assert report["passed"] is True and report["options"]["psp"] == "stripe"
    for fate in ("timeout", "lost_response", "error"):
        assert report["faultsInjected"][fate] > 0, report["faultsInjected"]
    checks = {check["name"]: check for check in report["checks"]}
    assert all(check["passed"] for check in checks.values()), checks
    accepted = checks["every accepted payment exists once"]["counts"]["accepted"]
    # One PaymentIntent per payment, whatever was retried.
    assert checks["the PSP's book: at most one charge per payment"]["counts"]["charges"] == accepted
    agreed = checks["our statuses and amounts agree with the PSP's book"]["counts"]
    assert agreed == {"payments": accepted, "agree": accepted}


def test_a_drill_refuses_stripe_itself() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "paystream", "drill", "--psp", "stripe", "--payments", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "STRIPE_API_KEY": "sk_test_not_for_drills"},
    )

    assert refused.returncode == 2
    assert "a drill on Stripe runs on localstripe" in " ".join(refused.stderr.split())
