"""What every phase of a bench run works with: the stack, the sizes, the
output folder, and the tools the phases share (the load generator, pausing
the stack's background processes, CPU accounting, profiles)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import run_apart
from paystream.cli.options import GatewayWorkers
from paystream.cli.options import Threads
from paystream.cli.options import Workers
from paystream.cli.options import option
from stack.launcher import Stack

# The sections of a run, in the order they run, as `paystream bench --only`
# names them.
SECTIONS = ("ledger", "reconciliation", "e2e", "idempotency", "ingress")

# The processes that work behind the gateway; paused while a ceiling runs.
BACKGROUND = ("worker", "janitor", "relay", "webhooks")


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
    """What a bench run measures, and on how many processes (the options of
    `paystream bench`, but for `--only`, which names the sections)."""

    quick: bool = option(False, "Seconds, not minutes: small sizes (the suite runs this).")
    gateway_workers: int = option(1, GatewayWorkers)
    workers: int = option(2, Workers)
    threads: int = option(8, Threads)
    profile: bool = option(False, "Record py-spy profiles of the gateway and the workers.")
    sections: tuple[str, ...] = SECTIONS

    @property
    def sizes(self) -> Sizes:
        return QUICK if self.quick else FULL


Say = Callable[[str], None]


class Harness:
    def __init__(self, stack: Stack, options: BenchOptions, folder: Path, say: Say) -> None:
        assert stack.info is not None
        self.stack, self.info, self.options, self.folder = stack, stack.info, options, folder
        self.sizes = options.sizes
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]

    def loadgen(self, mode: str, **spec: Any) -> dict[str, Any]:
        """bench.loadgen in a process of its own; its figures."""
        spec = {
            "mode": mode,
            "url": f"{self.info.gateway_url}/payments",
            "apiKey": self.info.api_key,
            "prefix": f"{self.run_id}-{mode}-{uuid.uuid4().hex[:6]}",
            **spec,
        }
        return run_apart(spec)

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
                # Samples of the threads holding the GIL only: where the CPU
                # goes, not where threads wait on a socket.
                "--gil",
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
