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
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import end_to_end
from bench import idempotency
from bench import ingress
from bench import ledger
from bench import reconciliation
from bench.harness import BenchOptions
from bench.harness import Harness
from bench.harness import Say
from bench.machine import describe
from bench.wrk import wrk_version
from stack.description import StackInfo

BENCH_SETTINGS = {
    "PAYSTREAM_RATE_LIMIT_PER_SECOND": "0",
    "PAYSTREAM_LOG_LEVEL": "WARNING",
}


def planned_steps(options: BenchOptions) -> int:
    """How many times a run calls `say`: one per step, for a progress bar."""
    sizes = options.sizes
    steps = {
        "ledger": 1,
        "reconciliation": len(sizes.reconciliation_rows),
        "e2e": 4,
        "idempotency": 2,
        "ingress": 3 * len(sizes.concurrencies),
    }
    return sum(steps[section] for section in options.sections)


def run(h: Harness) -> dict[str, Any]:
    """The chosen sections, in order, and the targets each result meets or not."""
    started = time.monotonic()
    info, options = h.info, h.options
    chosen = options.sections
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
    if "ledger" in chosen:
        h.say("ledger: postings per second")
        results["ledger"] = ledger.measure(info.database_url, h.sizes.ledger_entries)
    if "reconciliation" in chosen:
        results["reconciliation"] = []
        for rows in h.sizes.reconciliation_rows:
            h.say(f"reconciliation: {rows:,} rows, paystream and DuckDB")
            results["reconciliation"].append(
                reconciliation.measure(
                    info.database_url, info.simulator_url, h.stack.env, rows, h.folder, f"r{rows}"
                )
            )
    if "e2e" in chosen:
        results["endToEnd"] = end_to_end.measure(h)
    if "idempotency" in chosen:
        results["idempotency"] = idempotency.measure(h)
    if "ingress" in chosen:
        results["ingress"] = ingress.measure(h)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = targets(results)
    return results


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The performance targets for the sections this run measured, each with
    what the run measured and whether it meets it."""
    rows: list[dict[str, Any]] = []

    def target(what: str, measured: str, met: bool) -> None:
        rows.append({"target": what, "measured": measured, "met": met})

    if "ingress" in results:
        c32 = next(row for row in results["ingress"] if row["concurrency"] == 32)
        ours = c32["paystream"]
        target(
            "ingress at c32 at least 0.15 of bare Starlette",
            f"{c32['ratio']:.2f}",
            c32["ratio"] >= 0.15,
        )
        cpu = sum(ours["cpuMsPerRequest"].values())
        target("ingress CPU per create at most 0.7 ms (all processes)", f"{cpu:.2f} ms", cpu <= 0.7)
        target(
            "create p99 under 25 ms at c32",
            f"{ours['p99Ms']:.1f} ms (pipeline running: "
            f"{c32['paystreamPipelineRunning']['p99Ms']:.1f} ms)",
            ours["p99Ms"] < 25,
        )
    if "idempotency" in results:
        replay = results["idempotency"]
        target(
            "idempotent replays at least 0.3 of bare Starlette",
            f"{replay['ratio']:.2f}",
            replay["ratio"] >= 0.3,
        )
    if "endToEnd" in results:
        e2e = results["endToEnd"]
        cpu = sum(e2e["paystream"]["cpuMsPerPayment"].values())
        target(
            "end to end at least 0.15 of the Dramatiq no-op",
            f"{e2e['ratio']:.2f}",
            e2e["ratio"] >= 0.15,
        )
        target("end to end CPU per payment at most 3 ms (all processes)", f"{cpu:.2f} ms", cpu <= 3)
        paced = e2e["latency"]["paystream"]
        target(
            "time to AUTHORIZED at half capacity: p50 under 20 ms, p99 under 60 ms",
            f"p50 {paced['authorizedP50Ms']:.1f} ms, p99 {paced['authorizedP99Ms']:.1f} ms",
            paced["authorizedP50Ms"] < 20 and paced["authorizedP99Ms"] < 60,
        )
    if "reconciliation" in results:
        largest = results["reconciliation"][-1]
        lines = f"{largest['rows']:,} lines"
        target(
            f"reconciliation at least 1/3 of DuckDB's rows/s ({lines})",
            f"{largest['ratio']:.2f}",
            largest["ratio"] >= 1 / 3,
        )
        peak = largest["paystream"]["peakRssMb"]
        target(f"reconciliation peak memory under 256 MB ({lines})", f"{peak:.0f} MB", peak < 256)
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
