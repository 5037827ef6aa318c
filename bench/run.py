"""`paystream bench`: one run that starts a stack of its own and measures each
part of paystream next to a ceiling (or a peer) measured in the same run on
the same machine, so the ratios hold where absolute numbers drift.

Phases, in this order (each leaves the machine quiet for the next), a module
each:
  ledger          postings per second;
  reconciliation  `paystream reconcile FILE` against DuckDB on the same data;
  end_to_end      payments from POST to CAPTURED, against a Dramatiq no-op;
  idempotency     replays, and a storm of requests with one key;
  ingress         POST /payments against a bare Starlette endpoint (last: it
                  leaves a backlog of payments nobody waits for).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import end_to_end, idempotency, ingress, ledger, reconciliation
from bench.harness import BenchOptions, Harness, Say
from bench.machine import describe
from bench.wrk import wrk_version
from stack.launcher import StackInfo

BENCH_SETTINGS = {
    "PAYSTREAM_RATE_LIMIT_PER_SECOND": "0",
    "PAYSTREAM_LOG_LEVEL": "WARNING",
}


def planned_steps(options: BenchOptions) -> int:
    """How many times a run calls `say`: one per step, for a progress bar."""
    sizes = options.sizes
    ingress_steps = 3 * len(sizes.concurrencies)
    return 1 + len(sizes.reconciliation_rows) + 4 + 2 + ingress_steps


def run(h: Harness) -> dict[str, Any]:
    """Every phase, in order, and the targets each result meets or not."""
    started = time.monotonic()
    info, options = h.info, h.options
    results: dict[str, Any] = {
        "quick": options.quick,
        "startedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(
            info.database_url,
            info.redis_url,
            loadGenerator=wrk_version(),
            duckdb=reconciliation.duckdb_version(),
        ),
        "setup": {
            "gatewayWorkers": options.gateway_workers,
            "workerProcesses": options.workers,
            "threadsPerWorker": options.threads,
        },
    }
    h.say("ledger: postings per second")
    results["ledger"] = ledger.measure(info.database_url, h.sizes.ledger_entries)
    results["reconciliation"] = []
    for rows in h.sizes.reconciliation_rows:
        h.say(f"reconciliation: {rows:,} rows, paystream and DuckDB")
        results["reconciliation"].append(
            reconciliation.measure(
                info.database_url, info.simulator_url, h.stack.env, rows, h.folder, f"r{rows}"
            )
        )
    results["endToEnd"] = end_to_end.measure(h)
    results["idempotency"] = idempotency.measure(h)
    results["ingress"] = ingress.measure(h)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = targets(results)
    return results


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with what this run measured."""
    ingress = results["ingress"]
    c32 = next(row for row in ingress if row["concurrency"] == 32)
    largest = results["reconciliation"][-1]
    rows = [
        {
            "target": "ingress at least 1/3 of the bare Starlette ceiling",
            "measured": f"{min(row['ratio'] for row in ingress):.2f} (lowest of "
            + ", ".join(f"c{row['concurrency']}" for row in ingress)
            + ")",
            "met": all(row["ratio"] >= 1 / 3 for row in ingress),
        },
        {
            "target": "end to end at least 1/2 of the Dramatiq no-op ceiling",
            "measured": f"{results['endToEnd']['ratio']:.2f}",
            "met": results["endToEnd"]["ratio"] >= 0.5,
        },
        {
            "target": "create p99 under 25 ms at concurrency 32",
            "measured": f"{c32['paystream']['p99Ms']:.1f} ms (pipeline running: "
            f"{c32['paystreamPipelineRunning']['p99Ms']:.1f} ms)",
            "met": c32["paystream"]["p99Ms"] < 25,
        },
        {
            "target": f"reconciliation at least 1/3 of DuckDB's speed ({largest['rows']:,} rows)",
            "measured": f"{largest['ratio']:.2f}",
            "met": largest["ratio"] >= 1 / 3,
        },
        {
            "target": f"reconciliation peak memory under 256 MB ({largest['rows']:,} rows)",
            "measured": f"{largest['paystream']['peakRssMb']:.0f} MB",
            "met": largest["paystream"]["peakRssMb"] < 256,
        },
    ]
    return rows


def run_bench(
    options: BenchOptions, folder: Path, say: Say, started: Callable[[StackInfo], None]
) -> dict[str, Any]:
    from stack.scratch import scratch_stack

    folder.mkdir(parents=True, exist_ok=True)
    env = {**BENCH_SETTINGS}
    with scratch_stack(
        "paystream-bench-",
        workers=options.workers,
        threads=options.threads,
        gateway_workers=options.gateway_workers,
        env=env,
    ) as stack:
        info = stack.start()
        started(info)
        return run(Harness(stack, options, folder, say))
