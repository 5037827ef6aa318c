"""A process with no HTTP server of its own (the relay, the janitor, the
webhook deliverer) serves its metrics on PAYSTREAM_METRICS_PORT: in a
container of its own nobody else can."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from stack.ports import free_port
from stack.ports import wait_until


@pytest.fixture
def relay_with_a_metrics_port(database_url: str, redis_url: str) -> Iterator[int]:
    port = free_port()
    paystream = shutil.which("paystream")
    assert paystream
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PAYSTREAM_METRICS_PORT": str(port),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen([paystream, "relay"], env=env, stdout=subprocess.DEVNULL)
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_the_relay_serves_its_metrics_on_the_port_it_is_given(
    relay_with_a_metrics_port: int,
) -> None:
    def scrape() -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{relay_with_a_metrics_port}/metrics")
        except httpx.TransportError:
            return None

    answer = wait_until(scrape, timeout=60, what="the relay's metrics port", interval=0.2)
    assert answer is not None and answer.status_code == 200
    assert "# TYPE paystream_payment_transitions_total counter" in answer.text
