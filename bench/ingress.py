"""Ingress: POST /payments next to a bare Starlette endpoint served the same
way, with wrk at each concurrency: first with the pipeline paused (the
gateway's own cost, as where the workers have cores of their own), then with
it running and busy with the backlog (everything on this machine's cores at
once)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bench.cpu import cpu_use
from bench.harness import BACKGROUND
from bench.harness import Harness
from bench.wrk import run_wrk
from stack.ports import free_ports
from stack.ports import wait_until


def measure(h: Harness) -> list[dict[str, Any]]:
    concurrencies = h.sizes.concurrencies
    bare, alone, running = {}, {}, {}
    with ceiling_server(h) as ceiling_url:
        for concurrency in concurrencies:
            h.say(f"ingress: c{concurrency}, bare Starlette")
            bare[concurrency] = wrk(h, ceiling_url, concurrency, "bare")
    gateway = f"{h.info.gateway_url}/payments"
    with h.paused(*BACKGROUND):
        for concurrency in concurrencies:
            h.say(f"ingress: c{concurrency}, paystream, its pipeline paused")
            with (
                h.profiling("gateway", f"ingress-c{concurrency}-gateway"),
                cpu_use(h.roots()) as cpu,
            ):
                alone[concurrency] = wrk(h, gateway, concurrency, "alone")
            figures = alone[concurrency]
            requests = figures["requests"] + figures["warmUpRequests"]
            figures["cpuMsPerRequest"] = cpu.per(requests)
    for concurrency in concurrencies:
        h.say(f"ingress: c{concurrency}, paystream, its pipeline running")
        running[concurrency] = wrk(h, gateway, concurrency, "running")
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


def wrk(h: Harness, url: str, concurrency: int, label: str) -> dict[str, Any]:
    """A second of warm-up, then the measured run."""
    prefix = f"{h.run_id}-{label}-c{concurrency}"
    warm_up = run_wrk(
        url, api_key=h.info.api_key, concurrency=concurrency, seconds=1, prefix=prefix
    )
    result = run_wrk(
        url,
        api_key=h.info.api_key,
        concurrency=concurrency,
        seconds=h.sizes.seconds,
        prefix=prefix + "m",
    )
    return {**result.to_json(), "warmUpRequests": warm_up.requests}


@contextmanager
def ceiling_server(h: Harness) -> Iterator[str]:
    """bench.ceiling with as many processes as the gateway; its URL."""
    [port] = free_ports(1)
    log = (h.folder / "ceiling.log").open("ab")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "bench.ceiling", "--port", str(port)),
            *("--workers", str(h.options.gateway_workers)),
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
