"""`paystream bench --quick` as a user runs it: its own stack, every phase, the
table, the JSON and the chart. No figure is asserted, only that each one was
measured and that the harness's own correctness checks hold."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from bench.wrk import FALLBACK
from bench.wrk import run_wrk
from bench.wrk import wrk_version
from tests.support.stack import RunningStack


@pytest.mark.system_packages("wrk")  # the load generator the figures are measured with
def test_a_quick_bench_measures_every_phase_next_to_its_ceiling_and_writes_its_results(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench"
    run = subprocess.run(
        [sys.executable, "-m", "paystream", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    said = run.stdout + run.stderr
    assert "paystream bench" in said and "targets" in said

    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True
    assert {"cores", "memoryGiB", "python", "postgres", "redis"} <= set(results["machine"])

    for row in results["ingress"]:
        for side in ("ceiling", "paystream", "paystreamPipelineRunning"):
            assert row[side]["requests"] > 0 and row[side]["perSecond"] > 0, row
            assert row[side]["statusErrors"] == 0, row  # no 4xx or 5xx under load
        assert row["ratio"] > 0
    assert [row["concurrency"] for row in results["ingress"]] == [16, 32, 64]

    e2e = results["endToEnd"]
    assert e2e["paystream"]["payments"] == e2e["paystream"]["accepted"] > 0
    assert e2e["ceiling"]["messages"] > 0 and e2e["ratio"] > 0
    assert e2e["latency"]["paystream"]["payments"] > 0
    # Where the CPU went, per payment and per request: every role of the stack.
    assert {"worker", "gateway", "postgres", "psp-simulator"} <= set(
        e2e["paystream"]["cpuMsPerPayment"]
    )
    assert all(
        {"gateway", "postgres"} <= set(row["paystream"]["cpuMsPerRequest"])
        for row in results["ingress"]
    )

    storm = results["idempotency"]["storm"]
    assert storm["payments"] == 1, storm
    # The first answer is 201; those in flight with it get 409 (key in use),
    # later ones the first answer again (201, replayed).
    assert set(storm["statuses"]) <= {"201", "409"} and storm["statuses"]["201"] >= 1, storm
    assert sum(storm["statuses"].values()) == storm["requests"] == 1000
    assert results["idempotency"]["replay"]["requests"] > 0
    assert results["idempotency"]["ceiling"]["requests"] > 0 and results["idempotency"]["ratio"] > 0

    [recon] = results["reconciliation"]
    assert recon["sameClasses"] is True, recon
    counts = recon["paystream"]["counts"]
    assert counts["matched"] > 0
    assert all(counts[name] > 0 for name in counts if name != "matched"), counts
    assert recon["paystream"]["peakRssMb"] > 0

    assert results["ledger"]["postingsPerSecond"] > 0
    assert len(results["targets"]) == 9
    assert all(isinstance(target["met"], bool) for target in results["targets"])

    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| target | measured | met |" in (out / "results.md").read_text()


def test_without_wrk_the_bench_drives_the_gateway_with_its_own_load_generator_and_says_so(
    stack: RunningStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no wrk on it
    assert wrk_version() == FALLBACK and "wrk is not installed" in FALLBACK
    url = f"{stack.gateway}/payments"
    key, prefix = stack.info["apiKey"], uuid.uuid4().hex
    new = run_wrk(url, api_key=key, concurrency=4, seconds=1, prefix=prefix)
    assert new.requests > 0 and new.status_errors == 0 and new.per_second > 0
    assert 0 < new.p50_ms <= new.p99_ms <= new.max_ms
    # The key's first request alone (racers beside it are told 409, in use), then replays.
    for concurrency in (1, 4):
        replayed = run_wrk(
            url, api_key=key, concurrency=concurrency, seconds=1, prefix=prefix, replay=True
        )
        assert replayed.requests > 0 and replayed.status_errors == 0
    with psycopg.connect(stack.info["databaseUrl"]) as conn:
        made = conn.execute(
            "SELECT count(*) FROM payments WHERE order_id LIKE %s", (f"{prefix}-%",)
        ).fetchone()
    # Every new request made one payment; the replays, one between them.
    assert made == (new.requests + 1,)


def test_a_bench_run_with_only_some_sections_measures_those_and_their_targets_alone(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "paystream", "bench", "--quick"),
            *("--only", "ledger,reconciliation", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert {"ledger", "reconciliation"} <= set(results)
    assert not {"ingress", "endToEnd", "idempotency"} & set(results)
    assert [t["target"].split(" ")[0] for t in results["targets"]] == ["reconciliation"] * 2
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_bench_run_refuses_a_section_it_does_not_have() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "paystream", "bench", "--quick", "--only", "ledger,speed"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "no such section: speed" in run.stderr
