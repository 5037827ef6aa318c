"""A stack of its own for a run (drill, chaos, bench): a temporary folder,
free ports, stopped and removed at the end whatever happens, a SIGTERM too."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from stack.description import StackOptions
from stack.launcher import Stack
from stack.ports import free_ports


@contextmanager
def scratch_stack(
    prefix: str,
    *,
    workers: int = 2,
    threads: int = 16,
    gateway_workers: int = 1,
    env: dict[str, str] | None = None,
    psps: list[str] | None = None,
) -> Iterator[Stack]:
    """A stack, not yet started (so the caller can say so while it starts)."""
    with _ended_by_sigterm(), tempfile.TemporaryDirectory(prefix=prefix) as folder:
        os.chmod(folder, 0o755)  # noqa: S103  (the postgres user must reach its cluster)
        options = StackOptions(
            data_dir=Path(folder),
            workers=workers,
            threads=threads,
            gateway_workers=gateway_workers,
            env=env or {},
            psps=psps or ["simulator"],
        )
        stack = Stack(on_free_ports(options))
        try:
            yield stack
        finally:
            stack.stop()


@contextmanager
def _ended_by_sigterm() -> Iterator[None]:
    """SIGTERM (a CI job's timeout, `kill`) ends the run as Ctrl-C does, so
    the stack is stopped and its folder removed rather than left running.
    Exit code 143, the shell's for a SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may take signals
        return

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def on_free_ports(options: StackOptions) -> StackOptions:
    """The same stack on free loopback ports, so it runs beside any other."""
    port, simulator_port, stripe_port, pg_port, redis_port = free_ports(5)
    return replace(
        options,
        port=port,
        simulator_port=simulator_port,
        stripe_port=stripe_port,
        pg_port=pg_port,
        redis_port=redis_port,
    )
