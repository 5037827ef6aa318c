"""The PSP simulator served over real HTTP from a thread, for client tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from psp.simulator.app import create_app
from psp.simulator.faults import FaultSettings
from psp.simulator.service import SimulatorConfig
from stack.threaded import serving_in_thread

API_KEY = "sim-test-key"


@contextlib.contextmanager
def serving_simulator(folder: Path, faults: FaultSettings | None = None) -> Iterator[str]:
    app = create_app(
        SimulatorConfig(str(folder / "book.sqlite3"), API_KEY, faults or FaultSettings())
    )
    with serving_in_thread(app, ready_path="/healthz") as url:
        yield url
