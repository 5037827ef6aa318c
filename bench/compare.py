"""Two revisions of paystream side by side, end to end: is this one faster or
slower than that one, on this machine, today?

A figure from another day is no baseline: on this machine the Dramatiq no-op
ceiling alone has measured 3,856/s one day and 2,205/s another. So each
revision is checked out into a worktree of its own (its own code and lock
file), and the rounds alternate between them: each round starts the
revision's own `paystream up` with the bench's settings, warms it up, sends a
burst of payments over 32 connections, waits until every accepted one is
CAPTURED, and reads the CPU every process of the stack used meanwhile.

    paystream bench-compare f7a8d64 HEAD --payments 3000 --rounds 3
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.cpu import TICKS
from bench.cpu import children_of
from bench.cpu import process_table
from bench.cpu import tree
from bench.loadgen import run_apart
from bench.run import BENCH_SETTINGS
from stack.ports import wait_until

_ROLES = ("gateway", "dramatiq", "psp-simulator", "relay", "webhooks", "janitor", "postgres")
_WARM_UP = 200


@dataclass(frozen=True, slots=True)
class Revision:
    name: str  # as asked: a commit, a branch, HEAD
    commit: str
    folder: Path


def compare(
    revisions: list[str], *, payments: int, rounds: int, say: Any = print
) -> dict[str, Any]:
    """Rounds of each revision in turn; every round's figures and each
    revision's medians."""
    with _checked_out(revisions, say) as checkouts:
        measured: list[dict[str, Any]] = []
        for round_number in range(1, rounds + 1):
            for index, revision in enumerate(checkouts):
                say(f"round {round_number}: {revision.name} ({revision.commit[:10]})")
                figures = _round(revision, payments, base_port=19100 + 10 * index)
                measured.append({"revision": revision.name, "round": round_number, **figures})
                say(f"  {figures['perSecond']}/s, {figures['cpuMsPerPayment']} ms CPU a payment")
    medians = {
        revision: {
            key: statistics.median(row[key] for row in measured if row["revision"] == revision)
            for key in ("perSecond", "cpuMsPerPayment")
        }
        for revision in revisions
    }
    return {
        "payments": payments,
        "rounds": measured,
        "medians": medians,
        "againstFirst": _paired(measured, revisions),
    }


def _paired(measured: list[dict[str, Any]], revisions: list[str]) -> dict[str, dict[str, float]]:
    """Each revision against the first, round by round (the machine's speed
    drifts between rounds more than between two revisions in one round): the
    geometric mean of the ratios of its figures to the first's in the same round."""
    first = revisions[0]
    paired: dict[str, dict[str, float]] = {}
    for revision in revisions[1:]:
        ratios: dict[str, list[float]] = {"perSecond": [], "cpuMsPerPayment": []}
        for row in measured:
            if row["revision"] != revision:
                continue
            base = next(
                other
                for other in measured
                if other["revision"] == first and other["round"] == row["round"]
            )
            for key, values in ratios.items():
                values.append(row[key] / base[key])
        paired[revision] = {
            key: round(statistics.geometric_mean(values), 3) for key, values in ratios.items()
        }
    return paired


@contextmanager
def _checked_out(revisions: list[str], say: Any) -> Iterator[list[Revision]]:
    """Each revision in a worktree of its own, with its own environment."""
    top = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel"))
    parent = Path(tempfile.mkdtemp(prefix="paystream-compare-"))
    parent.chmod(0o755)  # the stack's Postgres runs as a user of its own, and must reach in
    checkouts: list[Revision] = []
    try:
        for index, name in enumerate(revisions):
            commit = _git(top, "rev-parse", "--verify", f"{name}^{{commit}}")
            folder = parent / f"{index}-{commit[:10]}"
            _git(top, "worktree", "add", "--detach", str(folder), commit)
            say(f"{name}: {commit[:10]} in {folder}, installing its environment")
            subprocess.run(["uv", "sync", "--quiet"], cwd=folder, check=True)
            checkouts.append(Revision(name, commit, folder))
        yield checkouts
    finally:
        for revision in checkouts:
            _git(top, "worktree", "remove", "--force", str(revision.folder))
        shutil.rmtree(parent, ignore_errors=True)


def _round(revision: Revision, payments: int, *, base_port: int) -> dict[str, Any]:
    data_dir = revision.folder / ".compare-stack"
    shutil.rmtree(data_dir, ignore_errors=True)
    ports = ("--port", "--simulator-port", "--pg-port", "--redis-port")
    command = ["uv", "run", "paystream", "up", "--data-dir", str(data_dir)]
    for offset, flag in enumerate(ports):
        command += [flag, str(base_port + offset)]
    log = (revision.folder / "compare-stack.log").open("w")
    stack = subprocess.Popen(
        command,
        cwd=revision.folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **BENCH_SETTINGS},
        start_new_session=True,
    )
    try:
        info_path = data_dir / "stack.json"
        wait_until(info_path.exists, timeout=180, what=f"{revision.name}'s stack", interval=0.5)
        # `up` writes stack.json once the gateway and the workers are ready; the
        # relay, the janitor and the webhooks process it does not wait for.
        time.sleep(2)
        info = json.loads(info_path.read_text())
        with psycopg.connect(info["databaseUrl"], autocommit=True) as conn:
            _burst(info, conn, "warm", _WARM_UP)
            before, started = _cpu_by_role(str(data_dir), stack.pid), time.monotonic()
            accepted = _burst(info, conn, "measured", payments)
            elapsed = time.monotonic() - started
            after = _cpu_by_role(str(data_dir), stack.pid)
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        try:
            stack.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
        log.close()
    by_role = {role: 1000 * (after[role] - before.get(role, 0)) / accepted for role in after}
    return {
        "accepted": accepted,
        "perSecond": round(accepted / elapsed, 1),
        "cpuMsPerPayment": round(sum(by_role.values()), 2),
        "cpuMsByProcess": {role: round(ms, 2) for role, ms in sorted(by_role.items())},
    }


def _burst(info: dict[str, Any], conn: psycopg.Connection[Any], name: str, count: int) -> int:
    """`count` payments over 32 connections; waits until every accepted one
    is CAPTURED and says how many were accepted."""
    # No long run of digits: an order id that could be a card number is refused.
    prefix = f"{name}-{uuid.uuid4().hex[:8]}"
    spec = {
        "mode": "burst",
        "url": f"{info['gatewayUrl']}/payments",
        "apiKey": info["apiKey"],
        "prefix": prefix,
        "count": count,
        "concurrency": 32,
    }
    sent = run_apart(spec)
    accepted = int(sent["statuses"].get("201", 0))
    if accepted == 0:
        raise RuntimeError(f"the stack accepted none of {count} payments: {sent['statuses']}")

    def captured() -> bool:
        row = conn.execute(
            "SELECT count(*) FROM payments WHERE starts_with(order_id, %s) AND status = 'CAPTURED'",
            (prefix,),
        ).fetchone()
        return row is not None and row[0] >= accepted

    wait_until(captured, timeout=900, what=f"{accepted} payments captured", interval=0.05)
    return accepted


def _cpu_by_role(data_dir: str, stack_pid: int) -> dict[str, float]:
    """CPU seconds so far of every process of one stack, by what it is: the
    `paystream up` process's tree, and a Postgres started apart from it (one
    that detached) found by its data folder."""
    processes = process_table()
    detached = [pid for pid in processes if data_dir in _command_line(pid)]
    seconds: dict[str, float] = {}
    for pid in tree(children_of(processes), [stack_pid, *detached]):
        role = _role(_command_line(pid))
        seconds[role] = seconds.get(role, 0.0) + processes.get(pid, (0, 0))[1] / TICKS
    return seconds


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _role(command_line: str) -> str:
    if "redis-server" in command_line:
        return "redis"
    return next((role for role in _ROLES if role in command_line), "other")


def _git(folder: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return out.stdout.strip()
