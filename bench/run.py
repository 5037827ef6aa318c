"""`paystream bench`: one run that starts a stack of its own and measures each
part of paystream next to a ceiling (or a peer) measured in the same run on
the same machine, so the ratios hold where absolute numbers drift.

Phases, in this order (each leaves the machine quiet for the next):
  ledger          postings per second;
  reconciliation  `paystream reconcile FILE` against DuckDB on the same data;
  end to end      payments from POST to CAPTURED, against a Dramatiq no-op;
  idempotency     replays, and a storm of requests with one key;
  ingress         POST /payments against a bare Starlette endpoint (last: it
                  leaves a backlog of payments nobody waits for).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import ledger, reconciliation
from bench.cpu import cpu_use
from bench.machine import describe
from bench.noop import DONE as NOOP_DONE
from bench.wrk import run_wrk, wrk_binary, wrk_version
from stack.launcher import Stack, StackInfo
from stack.ports import free_ports, wait_until

# The processes that work behind the gateway; paused while a ceiling runs.
BACKGROUND = ("worker", "janitor", "relay", "webhooks")
BENCH_SETTINGS = {
    "PAYSTREAM_RATE_LIMIT_PER_SECOND": "0",
    "PAYSTREAM_LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True, slots=True)
class Sizes:
    seconds: float  # per load run
    concurrencies: tuple[int, ...]
    e2e_payments: int
    noop_messages: int
    storm: int
    reconciliation_rows: tuple[int, ...]
    ledger_entries: int


FULL = Sizes(10, (16, 32, 64), 5_000, 20_000, 1_000, (100_000, 1_000_000), 20_000)
QUICK = Sizes(2, (16, 32, 64), 300, 1_000, 1_000, (2_000,), 500)


@dataclass(frozen=True, slots=True)
class BenchOptions:
    quick: bool = False
    gateway_workers: int = 1
    workers: int = 2
    threads: int = 8
    profile: bool = False


Say = Callable[[str], None]


def planned_steps(options: BenchOptions) -> int:
    """How many times a run calls `say`: one per step, for a progress bar."""
    sizes = QUICK if options.quick else FULL
    ingress = 3 * len(sizes.concurrencies)
    return 1 + len(sizes.reconciliation_rows) + 4 + 2 + ingress


class Bench:
    def __init__(self, stack: Stack, options: BenchOptions, folder: Path, say: Say) -> None:
        assert stack.info is not None
        self.stack, self.info, self.options, self.folder = stack, stack.info, options, folder
        self.sizes = QUICK if options.quick else FULL
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]

    # --- the phases ---------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        results: dict[str, Any] = {
            "quick": self.options.quick,
            "startedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": describe(
                self.info.database_url,
                self.info.redis_url,
                loadGenerator=wrk_version(),
                duckdb=reconciliation.duckdb_version(),
            ),
            "setup": {
                "gatewayWorkers": self.options.gateway_workers,
                "workerProcesses": self.options.workers,
                "threadsPerWorker": self.options.threads,
            },
        }
        self.say("ledger: postings per second")
        results["ledger"] = ledger.measure(self.info.database_url, self.sizes.ledger_entries)
        results["reconciliation"] = []
        for rows in self.sizes.reconciliation_rows:
            self.say(f"reconciliation: {rows:,} rows, paystream and DuckDB")
            results["reconciliation"].append(
                reconciliation.measure(
                    self.info.database_url,
                    self.info.simulator_url,
                    self.stack.env,
                    rows,
                    self.folder,
                    f"r{rows}",
                )
            )
        results["endToEnd"] = self.end_to_end()
        results["idempotency"] = self.idempotency()
        results["ingress"] = self.ingress()
        results["seconds"] = round(time.monotonic() - started, 1)
        results["targets"] = targets(results)
        return results

    def end_to_end(self) -> dict[str, Any]:
        sizes = self.sizes
        self.say(f"end to end: {sizes.e2e_payments:,} payments from POST to CAPTURED")
        with self.profiling("worker", "e2e-worker"), cpu_use(self.roots()) as cpu:
            burst = self.loadgen("burst", count=sizes.e2e_payments, concurrency=32)
            throughput = self.settled(burst)
        throughput["cpuMsPerPayment"] = cpu.per(throughput["payments"])
        rate = max(10.0, round(throughput["perSecond"] / 2))
        self.say(f"end to end: latency at {rate:.0f} payments/s (half the capacity)")
        paced = self.loadgen("rate", rate=rate, seconds=sizes.seconds, connections=64)
        latency = self.settled(paced)
        with self.paused(*BACKGROUND), self.noop_workers():
            self.say(f"queue ceiling: {sizes.noop_messages:,} Dramatiq no-op messages")
            noop = self.noop(sizes.noop_messages, None)
            self.say(f"queue ceiling: latency at {rate:.0f} messages/s")
            noop_paced = self.noop(int(rate * sizes.seconds), rate)
        return {
            "paystream": throughput,
            "ceiling": noop,
            "ratio": round(throughput["perSecond"] / noop["perSecond"], 3),
            "latency": {"offeredPerSecond": rate, "paystream": latency, "ceiling": noop_paced},
        }

    def idempotency(self) -> dict[str, Any]:
        self.say("idempotency: replays of one request")
        replay = run_wrk(
            f"{self.info.gateway_url}/payments",
            api_key=self.info.api_key,
            concurrency=64,
            seconds=self.sizes.seconds,
            prefix=f"{self.run_id}-replay",
            replay=True,
        )
        self.say(f"idempotency: a storm of {self.sizes.storm:,} requests with one key")
        storm = self.loadgen("storm", count=self.sizes.storm)
        with psycopg.connect(self.info.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM payments WHERE order_id = %s", (storm["orderId"],)
            ).fetchone()
        storm["payments"] = int(row[0]) if row else 0
        return {"replay": replay.to_json(), "storm": storm}

    def ingress(self) -> list[dict[str, Any]]:
        """POST /payments next to the bare Starlette endpoint: first with the
        pipeline paused (the gateway's own cost, as where the workers have
        cores of their own), then with it running and busy with the backlog
        (everything on this machine's cores at once)."""
        concurrencies = self.sizes.concurrencies
        bare, alone, running = {}, {}, {}
        with self.ceiling_server() as ceiling_url:
            for concurrency in concurrencies:
                self.say(f"ingress: c{concurrency}, bare Starlette")
                bare[concurrency] = self.wrk(ceiling_url, concurrency, "bare")
        gateway = f"{self.info.gateway_url}/payments"
        with self.paused(*BACKGROUND):
            for concurrency in concurrencies:
                self.say(f"ingress: c{concurrency}, paystream, its pipeline paused")
                with (
                    self.profiling("gateway", f"ingress-c{concurrency}-gateway"),
                    cpu_use(self.roots()) as cpu,
                ):
                    alone[concurrency] = self.wrk(gateway, concurrency, "alone")
                figures = alone[concurrency]
                requests = figures["requests"] + figures["warmUpRequests"]
                figures["cpuMsPerRequest"] = cpu.per(requests)
        for concurrency in concurrencies:
            self.say(f"ingress: c{concurrency}, paystream, its pipeline running")
            running[concurrency] = self.wrk(gateway, concurrency, "running")
        return [
            {
                "concurrency": concurrency,
                "ceiling": bare[concurrency],
                "paystream": alone[concurrency],
                "paystreamPipelineRunning": running[concurrency],
                "ratio": round(alone[concurrency]["perSecond"] / bare[concurrency]["perSecond"], 3),
            }
            for concurrency in concurrencies
        ]

    # --- tools --------------------------------------------------------------

    def wrk(self, url: str, concurrency: int, label: str) -> dict[str, Any]:
        prefix = f"{self.run_id}-{label}-c{concurrency}"
        warm_up = run_wrk(
            url, api_key=self.info.api_key, concurrency=concurrency, seconds=1, prefix=prefix
        )
        result = run_wrk(
            url,
            api_key=self.info.api_key,
            concurrency=concurrency,
            seconds=self.sizes.seconds,
            prefix=prefix + "m",
        )
        return {**result.to_json(), "warmUpRequests": warm_up.requests}

    def loadgen(self, mode: str, **spec: Any) -> dict[str, Any]:
        spec = {
            "mode": mode,
            "url": f"{self.info.gateway_url}/payments",
            "apiKey": self.info.api_key,
            "prefix": f"{self.run_id}-{mode}-{uuid.uuid4().hex[:6]}",
            **spec,
        }
        out = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode != 0:
            raise RuntimeError(f"the load generator failed: {out.stderr[-1500:]}")
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def settled(self, sent: dict[str, Any]) -> dict[str, Any]:
        """Wait until every payment the load generator created is CAPTURED;
        how fast they got there and how long each took to be authorized."""
        prefix = sent["prefix"] + "-"
        accepted = sent["statuses"].get("201", 0)
        with psycopg.connect(self.info.database_url, autocommit=True) as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM payments WHERE merchant_id = %s AND starts_with(order_id, %s)",
                    ("mer_demo", prefix),
                )
            ]

            def captured() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM payments WHERE id = ANY(%s) AND status = 'CAPTURED'",
                    (ids,),
                ).fetchone()
                return row is not None and row[0] == len(ids)

            wait_until(captured, timeout=900, what="every payment captured", interval=0.1)
            row = conn.execute(
                """
                WITH firsts AS (
                    SELECT p.id, p.created_at,
                           min(e.created_at)
                               FILTER (WHERE e.to_status IN ('AUTHORIZED', 'CAPTURED'))
                               AS authorized_at,
                           min(e.created_at) FILTER (WHERE e.to_status = 'CAPTURED') AS captured_at
                    FROM payments p JOIN payment_events e ON e.payment_id = p.id
                    WHERE p.id = ANY(%s) GROUP BY p.id, p.created_at
                )
                SELECT count(*),
                       extract(epoch FROM max(captured_at)),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY authorized_at - created_at),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY authorized_at - created_at),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY captured_at - created_at),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY captured_at - created_at)
                FROM firsts
                """,
                (ids,),
            ).fetchone()
        assert row is not None
        count, last_captured, a50, a99, c50, c99 = row
        seconds = float(last_captured) - sent["startedAt"]
        return {
            "payments": int(count),
            "accepted": accepted,
            "seconds": round(seconds, 2),
            "perSecond": round(count / seconds, 1),
            "authorizedP50Ms": round(a50.total_seconds() * 1000, 1),
            "authorizedP99Ms": round(a99.total_seconds() * 1000, 1),
            "capturedP50Ms": round(c50.total_seconds() * 1000, 1),
            "capturedP99Ms": round(c99.total_seconds() * 1000, 1),
        }

    def noop(self, count: int, rate: float | None) -> dict[str, Any]:
        command = [sys.executable, "-m", "bench.noop", "--count", str(count)]
        if rate:
            command += ["--rate", str(rate)]
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=900, env=self._noop_env()
        )
        if out.returncode != 0:
            raise RuntimeError(f"the no-op producer failed: {out.stderr[-1500:]}")
        result = json.loads(out.stdout)
        latencies: list[float] = result.pop("latencies")

        def percentile(share: float) -> float:
            index = min(len(latencies) - 1, int(share * len(latencies)))
            return round(latencies[index] * 1000, 1)

        return {
            "messages": result["completed"],
            "seconds": round(result["seconds"], 2),
            "perSecond": round(result["completed"] / result["seconds"], 1),
            "latencyP50Ms": percentile(0.5),
            "latencyP99Ms": percentile(0.99),
        }

    def _noop_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.info.redis_url,
            # As `paystream worker` sets it: the idle poll of a Redis consumer.
            "dramatiq_worker_timeout": "100",
        }

    @contextmanager
    def noop_workers(self) -> Iterator[None]:
        """Dramatiq workers for the no-op actor, as many as paystream's."""
        log = (self.folder / "noop-workers.log").open("ab")
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "dramatiq", "bench.noop"),
                *("--processes", str(self.options.workers), "--threads", str(self.options.threads)),
            ],
            env=self._noop_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.noop(1, None)  # the workers are up once one message has run
            yield
        finally:
            process.terminate()
            process.wait(30)
            log.close()
            import redis

            with redis.Redis.from_url(self.info.redis_url) as client:
                client.delete(NOOP_DONE)

    @contextmanager
    def ceiling_server(self) -> Iterator[str]:
        [port] = free_ports(1)
        log = (self.folder / "ceiling.log").open("ab")
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.ceiling", "--port", str(port)),
                *("--workers", str(self.options.gateway_workers)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}/payments"

        def up() -> bool:
            try:
                return httpx.post(url, json={}, timeout=1).status_code == 201
            except httpx.HTTPError:
                return False

        try:
            wait_until(up, timeout=30, what="the bare Starlette server")
            yield url
        finally:
            process.terminate()
            process.wait(30)
            log.close()

    def roots(self) -> dict[str, int]:
        """The stack's processes by role, for CPU accounting."""
        roots = {name: process.pid for name, process in self.stack.processes.items()}
        for name, server in (("postgres", self.stack.postgres), ("redis", self.stack.redis)):
            if server is not None and server.process is not None:
                roots[name] = server.process.pid
        return roots

    @contextmanager
    def paused(self, *names: str) -> Iterator[None]:
        for name in names:
            self.stack.processes[name].pause()
        try:
            yield
        finally:
            for name in names:
                self.stack.processes[name].resume()

    @contextmanager
    def profiling(self, process: str, name: str) -> Iterator[None]:
        """With --profile, py-spy records the process (and its children) as a
        speedscope profile in the output folder while the block runs."""
        if not self.options.profile:
            yield
            return
        output = self.folder / f"profile-{name}.speedscope.json"
        recorder = subprocess.Popen(
            [
                *("py-spy", "record", "--subprocesses", "--format", "speedscope", "--rate", "200"),
                *("-o", str(output), "--pid", str(self.stack.processes[process].pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            recorder.send_signal(2)
            recorder.wait(60)


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

    wrk_binary()  # fail early and clearly if the load generator is missing
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
        return Bench(stack, options, folder, say).run()
