"""The load generator for what wrk does not do: a fixed number of payments, an
open-loop rate, a storm of requests at one instant. It runs as its own process
on loopback, speaks HTTP/1.1 over keep-alive connections with uvloop, and
prints its result as JSON:

    python -m bench.loadgen '{"mode": "burst", "url": ..., "apiKey": ..., ...}'

Modes:
    burst  `count` new payments over `concurrency` connections, each sent as
           soon as the connection's previous answer is in;
    rate   new payments at `rate` per second for `seconds` (open loop: a
           latency counts from when the request was due, not when it left);
    storm  `count` connections opened first, then the same request with one
           Idempotency-Key on all of them at once;
    closed `concurrency` connections for `seconds`, each sending the next
           new payment (or, with `replay`, the same one) as soon as its
           answer is in: what wrk does, for machines without wrk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import uvloop


class Connection:
    """One keep-alive HTTP/1.1 connection; answers are read by Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Payments:
    """Raw create-payment requests for one gateway and key."""

    def __init__(self, spec: dict[str, Any]) -> None:
        parts = urlsplit(spec["url"])
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/payments"
        self.api_key = spec.get("apiKey", "")
        self.capture_method = spec.get("captureMethod", "automatic")
        self.prefix = spec.get("prefix") or uuid.uuid4().hex[:12]

    def body(self, order_id: str) -> bytes:
        return json.dumps(
            {
                "orderId": order_id,
                "amount": 1999,
                "currency": "EUR",
                "methodToken": "tok_visa",
                "captureMethod": self.capture_method,
            },
            separators=(",", ":"),
        ).encode()

    def request(self, key: str, body: bytes) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.api_key}\r\nIdempotency-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def new(self, index: int) -> bytes:
        order_id = f"{self.prefix}-{index}"
        return self.request(order_id, self.body(order_id))

    def connection(self) -> Connection:
        return Connection(self.host, self.port)


def summary(latencies: list[float], statuses: Counter[int], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return {
        "requests": len(ordered),
        "seconds": seconds,
        "perSecond": len(ordered) / seconds if seconds else 0.0,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "p50Ms": percentile(0.50),
        "p90Ms": percentile(0.90),
        "p99Ms": percentile(0.99),
        "maxMs": ordered[-1] * 1000 if ordered else 0.0,
    }


async def burst(spec: dict[str, Any]) -> dict[str, Any]:
    payments = Payments(spec)
    count, concurrency = int(spec["count"]), int(spec["concurrency"])
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    next_index = iter(range(count))

    async def client() -> None:
        connection = payments.connection()
        for index in next_index:
            began = time.perf_counter()
            status, _ = await connection.send(payments.new(index))
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
        connection.close()

    started_at, began = time.time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {
        **summary(latencies, statuses, time.perf_counter() - began),
        "startedAt": started_at,
        "prefix": payments.prefix,
    }


async def at_rate(spec: dict[str, Any]) -> dict[str, Any]:
    payments = Payments(spec)
    rate, seconds = float(spec["rate"]), float(spec["seconds"])
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(int(spec.get("connections", 64))):
        idle.put_nowait(payments.connection())
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def one(index: int, due: float) -> None:
        connection = await idle.get()
        try:
            status, _ = await connection.send(payments.new(index))
        finally:
            idle.put_nowait(connection)
        latencies.append(time.perf_counter() - due)
        statuses[status] += 1

    started_at, began = time.time(), time.perf_counter()
    tasks = []
    for index in range(int(rate * seconds)):
        due = began + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    return {
        **summary(latencies, statuses, time.perf_counter() - began),
        "startedAt": started_at,
        "prefix": payments.prefix,
    }


async def storm(spec: dict[str, Any]) -> dict[str, Any]:
    payments = Payments(spec)
    count = int(spec["count"])
    key = f"{payments.prefix}-storm"
    raw = payments.request(key, payments.body(key))
    connections = [payments.connection() for _ in range(count)]
    await asyncio.gather(*(connection.open() for connection in connections))
    go = asyncio.Event()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    created: Counter[str] = Counter()

    async def one(connection: Connection) -> None:
        await go.wait()
        began = time.perf_counter()
        status, body = await connection.send(raw)
        latencies.append(time.perf_counter() - began)
        statuses[status] += 1
        if status == 201:
            created[hashlib.sha256(body).hexdigest()] += 1
        connection.close()

    tasks = [asyncio.create_task(one(connection)) for connection in connections]
    await asyncio.sleep(0.1)  # every task is waiting on the event
    began = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return {
        **summary(latencies, statuses, time.perf_counter() - began),
        "orderId": key,
        "distinctCreatedAnswers": len(created),
    }


async def closed(spec: dict[str, Any]) -> dict[str, Any]:
    payments = Payments(spec)
    concurrency, seconds = int(spec["concurrency"]), float(spec["seconds"])
    replayed = f"{payments.prefix}-replay"
    same = payments.request(replayed, payments.body(replayed))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    numbers = iter(range(1 << 62))
    began = time.perf_counter()

    async def client() -> None:
        connection = payments.connection()
        while time.perf_counter() - began < seconds:
            raw = same if spec.get("replay") else payments.new(next(numbers))
            sent = time.perf_counter()
            status, _ = await connection.send(raw)
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
        connection.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return summary(latencies, statuses, time.perf_counter() - began)


MODES = {"burst": burst, "rate": at_rate, "storm": storm, "closed": closed}


def run_apart(spec: dict[str, Any], *, timeout: float = 900) -> dict[str, Any]:
    """The load generator in a process of its own (so that it does not share
    an interpreter with what measures), on `spec`; its figures."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed: {out.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = uvloop.run(MODES[spec["mode"]](spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
