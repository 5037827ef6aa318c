"""The PSP simulator served over real HTTP from a thread, for client tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from psp.simulator.app import SimulatorConfig, create_app
from psp.simulator.faults import FaultSettings
from stack.ports import free_port

API_KEY = "sim-test-key"


@contextlib.contextmanager
def serving_simulator(folder: Path, faults: FaultSettings | None = None) -> Iterator[str]:
    port = free_port()
    app = create_app(
        SimulatorConfig(str(folder / "book.sqlite3"), API_KEY, faults or FaultSettings())
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
