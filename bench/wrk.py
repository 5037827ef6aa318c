"""wrk (the C load generator) against one URL, with a Lua script that makes
every request a new payment (or, for replays, the same one) and reports its
figures as JSON. Where wrk is not installed, bench.loadgen's `closed` mode
does the same work in its place, and the results say so (`wrk_version`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import run_apart

# Each wrk thread numbers its own requests; orders and keys are
# <prefix>-<thread>-<n>, so no two requests of a run share a key.
_SCRIPT = r"""
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  fixed = args[2] == "replay"
  wrk.headers["Authorization"] = "Bearer " .. args[3]
  wrk.headers["Content-Type"] = "application/json"
  counter = 0
end

function request()
  local order
  if fixed then
    order = prefix .. "-replay"
  else
    counter = counter + 1
    order = prefix .. "-" .. thread_id .. "-" .. counter
  end
  wrk.headers["Idempotency-Key"] = order
  local body = '{"orderId":"' .. order .. '","amount":1999,"currency":"EUR",'
    .. '"methodToken":"tok_visa","captureMethod":"automatic"}'
  return wrk.format("POST", nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nJSON{"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,'
    .. '"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,'
    .. '"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # connect, read and write errors, timeouts and answers >= 400
    status_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        """Requests answered below 400, per second."""
        ok = self.requests - self.status_errors
        return ok / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "perSecond": round(self.per_second, 1),
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "errors": self.errors,
            "statusErrors": self.status_errors,
            "p50Ms": round(self.p50_ms, 2),
            "p90Ms": round(self.p90_ms, 2),
            "p99Ms": round(self.p99_ms, 2),
            "maxMs": round(self.max_ms, 2),
        }


# What the results name as the load generator when wrk is not installed.
FALLBACK = (
    "bench.loadgen in wrk's place (wrk is not installed: apt-get install wrk;"
    " the figures are those of paystream's own Python load generator)"
)


def wrk_version() -> str:
    found = shutil.which("wrk")
    if found is None:
        return FALLBACK
    out = subprocess.run([found, "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" [")[0]


def run_wrk(
    url: str,
    *,
    api_key: str,
    concurrency: int,
    seconds: float,
    prefix: str,
    replay: bool = False,
    threads: int = 1,
) -> WrkResult:
    """POST payments to `url` for `seconds` over `concurrency` connections."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return _without_wrk(url, api_key, concurrency, seconds, prefix, replay)
    with tempfile.TemporaryDirectory(prefix="paystream-wrk-") as folder:
        script = Path(folder) / "payments.lua"
        script.write_text(_SCRIPT)
        command = [
            wrk,
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            prefix,
            "replay" if replay else "new",
            api_key,
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    marker = out.stdout.rfind("JSON{")
    if marker < 0:
        raise RuntimeError(f"wrk gave no figures:\n{out.stdout}\n{out.stderr}")
    figures = json.loads(out.stdout[marker + 4 :].splitlines()[0])
    errors = sum(
        figures[name]
        for name in ("connectErrors", "readErrors", "writeErrors", "statusErrors", "timeouts")
    )
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["durationUs"] / 1e6,
        errors=errors,
        status_errors=figures["statusErrors"],
        p50_ms=figures["p50Us"] / 1000,
        p90_ms=figures["p90Us"] / 1000,
        p99_ms=figures["p99Us"] / 1000,
        max_ms=figures["maxUs"] / 1000,
    )


def _without_wrk(
    url: str, api_key: str, concurrency: int, seconds: float, prefix: str, replay: bool
) -> WrkResult:
    spec = {
        "mode": "closed",
        "url": url,
        "apiKey": api_key,
        "prefix": prefix,
        "concurrency": concurrency,
        "seconds": max(1, round(seconds)),
        "replay": replay,
    }
    figures = run_apart(spec, timeout=600)
    refused = sum(n for status, n in figures["statuses"].items() if int(status) >= 400)
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["seconds"],
        errors=refused,
        status_errors=refused,
        p50_ms=figures["p50Ms"],
        p90_ms=figures["p90Ms"],
        p99_ms=figures["p99Ms"],
        max_ms=figures["maxMs"],
    )
