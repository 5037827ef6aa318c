"""`paystream chaos`: a drill with the stack's own processes and servers
misbehaving too, on a schedule drawn from the seed, then every money
invariant checked, reconciliation included.

Faults beside the PSP's (timeouts, lost answers, errors, answers only a
callback tells; callbacks delayed, duplicated, reordered): SIGKILL and restart
of the worker, relay, janitor, gateway and webhook processes; a Redis restart
and a Redis flush; every Postgres backend terminated mid-transaction; a PSP
outage window; a merchant endpoint down for a while. Each fires when a given
share of the payments is done, so the same seed gives the same workload and
the same schedule.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import redis

from drill.checks import Check, every_event_reached_the_merchant, run_checks
from drill.plan import make_plans
from drill.receiver import Receiver, serving_receiver
from drill.runner import DrillOptions, register_endpoint, set_faults
from drill.workload import collect, run_workload
from stack.launcher import Stack, StackInfo
from store.errors import StoreUnavailable
from store.outbox import outbox_tally, queued_events, timeline_events_not_queued

KILLABLE = ("worker", "relay", "janitor", "gateway", "webhooks")
FAULT_KINDS = (
    *(f"kill_{name}" for name in KILLABLE),
    "redis_restart",
    "redis_flush",
    "postgres_terminate",
    "psp_outage",
    "endpoint_down",
)
# Faults fire between these shares of the payments done: late enough that
# traffic is flowing, early enough that the run outlives their effects.
FIRST, LAST = 0.05, 0.85


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    at: float  # share of the payments done when it fires
    kind: str
    seconds: float  # how long it lasts (down time, outage)


@dataclass(frozen=True)
class ChaosOptions:
    payments: int = 2000
    seed: int = 1
    concurrency: int = 32
    # How long the system may take to settle once the faults stop.
    quiescence_timeout: float = 300.0


def fault_schedule(options: ChaosOptions) -> list[ScheduledFault]:
    """Every kind at least once, one more round per 1,000 payments."""
    draw = random.Random(f"chaos:{options.seed}")
    rounds = 1 + options.payments // 1000
    faults = [
        ScheduledFault(round(draw.uniform(FIRST, LAST), 3), kind, round(draw.uniform(0.5, 4.0), 1))
        for _ in range(rounds)
        for kind in FAULT_KINDS
    ]
    return sorted(faults, key=lambda fault: fault.at)


def drill_options(options: ChaosOptions) -> DrillOptions:
    return DrillOptions(
        payments=options.payments,
        seed=options.seed,
        concurrency=options.concurrency,
        timeout_rate=0.1,
        lost_response_rate=0.05,
        error_rate=0.05,
        webhook_only_rate=0.05,
        webhook_duplicate_rate=0.2,
        webhook_reorder_rate=0.2,
        endpoint_failures=1,
        settle_timeout=600,
    )


@dataclass
class ChaosReport:
    options: ChaosOptions
    schedule: list[ScheduledFault]
    injected: Counter[str] = field(default_factory=Counter)
    psp_faults: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "options": asdict(self.options),
            "seconds": round(self.seconds, 1),
            "schedule": [asdict(fault) for fault in self.schedule],
            "faultsInjected": dict(self.injected),
            "pspFaults": self.psp_faults,
            "checks": [check.to_json() for check in self.checks],
        }


class _Saboteur:
    """Fires the scheduled faults as the payments get done."""

    def __init__(
        self,
        stack: Stack,
        receiver: Receiver,
        schedule: list[ScheduledFault],
        total: int,
        report: ChaosReport,
    ) -> None:
        self._stack, self._receiver, self._report = stack, receiver, report
        self._pending = list(schedule)
        self._total = total
        self._done = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="saboteur", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def payment_done(self) -> None:
        with self._lock:
            self._done += 1
        self._wake.set()

    def finish(self) -> None:
        """Fire what is left (a short run may end first), then stop."""
        with self._lock:
            self._done = self._total
        self._wake.set()
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while self._pending:
            self._wake.wait(0.5)
            self._wake.clear()
            with self._lock:
                share = self._done / self._total
            while self._pending and self._pending[0].at <= share:
                fault = self._pending.pop(0)
                self._inject(fault)
                self._report.injected[fault.kind] += 1
            if self._stop.is_set() and not self._pending:
                return

    def _inject(self, fault: ScheduledFault) -> None:
        stack, info = self._stack, self._stack.info
        assert info is not None
        if fault.kind.startswith("kill_"):
            name = fault.kind.removeprefix("kill_")
            stack.processes[name].kill()
            time.sleep(fault.seconds)
            stack.restart(name)
        elif fault.kind == "redis_restart":
            stack.restart_redis()
        elif fault.kind == "redis_flush":
            with redis.Redis.from_url(info.redis_url) as client:
                client.flushall()
        elif fault.kind == "postgres_terminate":
            with psycopg.connect(info.database_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                )
        elif fault.kind == "psp_outage":
            httpx.patch(
                f"{info.simulator_url}/_admin/faults",
                json={"outages": [{"startsIn": 0, "lasts": fault.seconds}]},
            )
        elif fault.kind == "endpoint_down":
            self._receiver.down_until = time.monotonic() + 3 * fault.seconds


def run_chaos(
    stack: Stack, options: ChaosOptions, on_payment_done: Callable[[], None] = lambda: None
) -> ChaosReport:
    info = stack.info
    assert info is not None
    started = time.monotonic()
    schedule = fault_schedule(options)
    report = ChaosReport(options, schedule)
    drill = drill_options(options)
    with serving_receiver() as receiver:
        receiver.fail_first = drill.endpoint_failures
        endpoint_id = register_endpoint(info, receiver)
        set_faults(info.simulator_url, drill)
        saboteur = _Saboteur(stack, receiver, schedule, options.payments, report)

        def done() -> None:
            saboteur.payment_done()
            on_payment_done()

        saboteur.start()
        try:
            runs = asyncio.run(
                run_workload(
                    info.gateway_url,
                    info.api_key,
                    make_plans(options.payments, options.seed),
                    concurrency=options.concurrency,
                    settle_timeout=drill.settle_timeout,
                    on_done=done,
                )
            )
        finally:
            saboteur.finish()
        faults = httpx.get(f"{info.simulator_url}/_admin/faults").json()
        report.psp_faults = {
            **faults["drawn"],
            **{f"callbacks {name}": count for name, count in faults["webhooks"].items()},
        }
        _calm(info)
        receiver.down_until = 0.0
        quiet = _wait_for_quiescence(info, options.quiescence_timeout)
        payments, timelines, by_order = asyncio.run(collect(info.gateway_url, info.api_key, runs))
        book = httpx.get(f"{info.simulator_url}/_book", timeout=60).json()
        report.checks = [quiet, *run_checks(runs, payments, timelines, by_order, book)]
        events = _events_of(info.database_url, set(payments))
        report.checks.append(
            every_event_reached_the_merchant(events, receiver, endpoint_id, info.database_url)
        )
        report.checks.append(_event_log_has_no_gaps(info))
        report.checks.extend(_books(stack, info, set(payments), book))
        report.checks.append(_audit_chain_verifies(stack))
        report.checks.append(_every_fault_injected(report))
    report.seconds = time.monotonic() - started
    return report


def _calm(info: StackInfo) -> None:
    httpx.patch(
        f"{info.simulator_url}/_admin/faults",
        json={
            "timeoutRate": 0,
            "lostResponseRate": 0,
            "errorRate": 0,
            "webhookOnlyRate": 0,
            "outages": [],
            "latencyMs": 0,
            "jitterMs": 0,
        },
    ).raise_for_status()


def _wait_for_quiescence(info: StackInfo, timeout: float) -> Check:
    """Until nothing is left to do: no pending PSP call or callback, every event
    published, taken in and delivered."""
    check = Check("the system settles once the faults stop")
    queries = {
        "pending operations": "SELECT count(*) FROM payment_operations"
        " WHERE status = 'pending' AND flagged_at IS NULL",
        "pending callbacks": "SELECT count(*) FROM webhook_inbox WHERE status = 'pending'",
        "deliveries pending": "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
    }
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    # The last moment each kind of work was still left: what settling waited on.
    last_seen: dict[str, float] = {}
    while True:
        try:
            with psycopg.connect(info.database_url) as conn:
                left = {name: int(conn.execute(sql).fetchone()[0]) for name, sql in queries.items()}  # type: ignore[index]
                outbox = outbox_tally(conn)
            assert outbox is not None
            left["unpublished events"] = outbox.events - outbox.published
            left["events not taken in"] = outbox.events - outbox.fanned_out
        except (psycopg.OperationalError, StoreUnavailable):
            left = {"database": 1}
        now = time.monotonic()
        last_seen.update({name: now - started for name, count in left.items() if count})
        if not any(left.values()) or now > deadline:
            break
        time.sleep(1.0)
    check.counts = {**left, "seconds to settle": round(time.monotonic() - started)}
    if last_seen:
        slowest = max(last_seen, key=last_seen.__getitem__)
        check.counts[f"seconds {slowest}"] = round(last_seen[slowest])
    for name, count in left.items():
        if count:
            check.fail(f"{count} {name} after {timeout:.0f} s")
    return check


def _events_of(database_url: str, payment_ids: set[str]) -> list[str]:
    with psycopg.connect(database_url) as conn:
        queued = queued_events(conn)
    return [event.event_id for event in queued if event.payment_id in payment_ids]


def _event_log_has_no_gaps(info: StackInfo) -> Check:
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


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paystream", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _books(
    stack: Stack, info: StackInfo, payment_ids: set[str], book: dict[str, Any]
) -> list[Check]:
    """Reconcile today's settlement report, then hold the ledger to the PSP's book."""
    today = datetime.now(UTC).date().isoformat()
    reconciled = Check("reconciliation of the PSP's report: every line matched, no break")
    with psycopg.connect(info.database_url) as conn:
        before = conn.execute("SELECT count(*) FROM reconciliations").fetchone()
    out = _cli(stack, "reconcile", "--psp-batch", today, "--json", "/dev/stdout")
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

    ledger = Check("the ledger verifies, and its totals equal the PSP's settled totals")
    verified = _cli(stack, "ledger", "verify")
    if verified.returncode != 0:
        ledger.fail("paystream ledger verify failed: " + verified.stdout[-800:])
    report = httpx.get(
        f"{info.simulator_url}/v1/settlements/{today}",
        headers={"Authorization": f"Bearer {stack.env['PAYSTREAM_PSP_API_KEY']}"},
    ).text
    rows = list(csv.DictReader(io.StringIO(report)))
    report_fees = sum(int(r["fee"]) for r in rows)
    report_net = sum(int(r["net"]) for r in rows)
    ours_at_psp = [c for c in book["charges"] if c["reference"] in payment_ids]
    charge_ids = {c["id"] for c in ours_at_psp}
    captured = sum(c["capturedAmount"] for c in ours_at_psp)
    refunded = sum(
        r["amount"]
        for r in book["refunds"]
        if r["status"] == "succeeded" and r["paymentId"] in charge_ids
    )
    with psycopg.connect(info.database_url) as conn:
        rows_by_kind = conn.execute(
            "SELECT e.source_type || ':' || a.kind, sum(p.amount) FROM postings p"
            " JOIN journal_entries e ON e.id = p.entry_id"
            " JOIN ledger_accounts a ON a.id = p.account_id GROUP BY 1"
        ).fetchall()
    totals: dict[str, int] = {str(kind): int(total) for kind, total in rows_by_kind}
    ours = {
        "captured": int(totals.get("capture:psp_receivable", 0)),
        "refunded": int(totals.get("refund:refunds", 0)),
        "fees": int(totals.get("settlement:fees", 0)),
        "paid out": int(totals.get("settlement:bank", 0)),
    }
    theirs = {
        "captured": captured,
        "refunded": refunded,
        "fees": report_fees,
        "paid out": report_net,
    }
    ledger.counts = {f"{name} (ours = PSP)": ours[name] for name in ours}
    for name in ours:
        if ours[name] != theirs[name]:
            ledger.fail(f"{name}: ledger {ours[name]}, PSP {theirs[name]}")
    return [reconciled, ledger]


def _audit_chain_verifies(stack: Stack) -> Check:
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


def _every_fault_injected(report: ChaosReport) -> Check:
    check = Check("every fault kind was injected at least once")
    check.counts = dict(sorted(report.injected.items()))
    for kind in FAULT_KINDS:
        if not report.injected[kind]:
            check.fail(f"{kind} never fired")
    for fate in ("timeout", "lost_response", "error", "webhook_only"):
        if not report.psp_faults.get(fate):
            check.fail(f"the PSP never met a {fate}")
    for fate in ("callbacks duplicated", "callbacks reordered"):
        if not report.psp_faults.get(fate):
            check.fail(f"no PSP callback was {fate.split()[1]}")
    return check


def dump_json(report: ChaosReport) -> str:
    return json.dumps(report.to_json(), indent=2)
