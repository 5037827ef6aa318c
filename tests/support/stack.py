"""`paystream up` as a user runs it: a subprocess, found through its stack.json."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from stack.ports import free_ports
from stack.ports import wait_until


@dataclass
class RunningStack:
    root: Path
    process: subprocess.Popen[bytes]
    info: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.info["gatewayUrl"]

    @property
    def simulator(self) -> str:
        return self.info["simulatorUrl"]

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        """The demo merchant's key."""
        headers = {"Authorization": f"Bearer {self.info['apiKey']}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def operator_headers(self) -> dict[str, str]:
        """The local operator's key: what reconciles."""
        return {"Authorization": f"Bearer {self.info['operatorKey']}"}

    def book(self) -> dict[str, Any]:
        return httpx.get(f"{self.simulator}/_book").json()  # type: ignore[no-any-return]

    def charges_for(self, payment_id: str) -> list[dict[str, Any]]:
        return [c for c in self.book()["charges"] if c["reference"] == payment_id]

    def payment(self, payment_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.gateway}/payments/{payment_id}", headers=self.headers())
        return answer.json()  # type: ignore[no-any-return]

    def wait_for_status(
        self, payment_id: str, wanted: set[str], timeout: float = 10.0
    ) -> dict[str, Any]:
        return wait_until(
            lambda: self.payment(payment_id),
            holds=lambda payment: payment["status"] in wanted,
            timeout=timeout,
            what=f"{payment_id} to be {' or '.join(sorted(wanted))}",
            interval=0.02,
        )

    def pending_operations(self, payment_id: str) -> int:
        """How many of the payment's PSP operations are still open in Postgres."""
        with psycopg.connect(self.info["databaseUrl"]) as conn:
            row = conn.execute(
                "SELECT count(*) FROM payment_operations"
                " WHERE payment_id = %s AND status = 'pending'",
                (payment_id,),
            ).fetchone()
        return int(row[0]) if row else 0

    def wait_until_settled(self, payment_id: str, timeout: float = 10.0) -> None:
        """Until the gateway has nothing left to ask the PSP for the payment:
        every operation of it closed in Postgres. From then on its charges at
        the PSP cannot change: a worker still holding an operation it read
        open can only resend that operation's own idempotency key, which the
        PSP answers from its book."""
        wait_until(
            lambda: self.pending_operations(payment_id),
            holds=lambda pending: pending == 0,
            timeout=timeout,
            what=f"every operation of {payment_id} to close (pending operations)",
            interval=0.02,
        )

    def log_files(self) -> list[Path]:
        return sorted((self.root / "logs").glob("*.log"))

    def stop(self) -> int:
        """Ctrl-C, as a user would; the exit code of `paystream up`."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_stack(
    root: Path,
    *,
    env: dict[str, str] | None = None,
    workers: int = 1,
    threads: int = 8,
    timeout: float = 120.0,
    tls: bool = False,
    options: tuple[str, ...] = (),
) -> RunningStack:
    """`paystream up` on free ports; `options` are more of its flags (`--psp`, …)."""
    names = ("port", "simulator-port", "stripe-port", "pg-port", "redis-port")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    argv = [
        sys.executable,
        "-m",
        "paystream",
        "up",
        "--data-dir",
        str(root),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    for name, port in ports.items():
        argv += [f"--{name}", str(port)]
    if tls:
        argv.append("--tls")
    argv += options
    stack_json = root / "stack.json"
    stack_json.unlink(missing_ok=True)  # a previous run's must not be mistaken for this one's
    with (root / "up.out").open("wb") as output:
        process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    with contextlib.suppress(TimeoutError):  # up.out, below, says why
        wait_until(
            lambda: stack_json.exists() or process.poll() is not None,
            timeout=timeout,
            what="paystream up to write stack.json",
            interval=0.1,
        )
    if not stack_json.exists():
        process.kill()
        raise RuntimeError(f"paystream up did not start:\n{(root / 'up.out').read_text()}")
    return RunningStack(root, process, json.loads(stack_json.read_text()), ports)


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
