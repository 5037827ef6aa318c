"""Sync or async actors? A payment's trip through the worker, timed both ways.

The store can be one layer in two ways: every function async, the actors
running on Dramatiq's asyncio support; or functions that describe their
statements, run by a sync runner (the actors, in threads) and an async one
(the gateway). This measures the worker's side of a payment both ways, on
the same servers, with the same SQL: lock the operation and count the try
(one transaction), call the PSP over HTTP, then lock the payment and write
its status, timeline event, outbox row and the operation's end (another).

    uv run python -m bench.runtime_choice [--payments 4000]

Prints payments per second and CPU per payment (workers, Postgres) for each
way, and writes runtime-choice.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from stack.ports import wait_until

QUEUE = "runtime-choice"
MODE = os.environ.get("RUNTIME_CHOICE_MODE", "sync")

_SCHEMA = """
DROP TABLE IF EXISTS rc_payments, rc_operations, rc_events, rc_outbox;
CREATE TABLE rc_payments (id text PRIMARY KEY, status text NOT NULL, amount bigint NOT NULL,
    psp_reference text, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE rc_operations (id text PRIMARY KEY, payment_id text NOT NULL, status text NOT NULL,
    attempts int NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE rc_events (id bigserial PRIMARY KEY, payment_id text NOT NULL, type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE rc_outbox (id bigserial PRIMARY KEY, payment_id text NOT NULL, payload jsonb);
"""
_LOCK_OPERATION = "SELECT status FROM rc_operations WHERE id = %s FOR UPDATE"
_COUNT_TRY = "UPDATE rc_operations SET attempts = attempts + 1, updated_at = now() WHERE id = %s"
_READ_PAYMENT = "SELECT id, amount FROM rc_payments WHERE id = %s"
_LOCK_PAYMENT = "SELECT status FROM rc_payments WHERE id = %s FOR UPDATE"
_MOVE = (
    "UPDATE rc_payments SET status = 'CAPTURED', psp_reference = %s, updated_at = now()"
    " WHERE id = %s"
)
_EVENT = "INSERT INTO rc_events (payment_id, type) VALUES (%s, 'payment.captured')"
_OUTBOX = "INSERT INTO rc_outbox (payment_id, payload) VALUES (%s, %s)"
_CLOSE = "UPDATE rc_operations SET status = 'succeeded', updated_at = now() WHERE id = %s"

_redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_database_url = os.environ.get("DATABASE_URL", "")
_psp_url = os.environ.get("PSP_URL", "http://127.0.0.1:1")

if MODE == "async":
    from dramatiq.middleware.asyncio import AsyncIO

    _broker = RedisBroker(url=_redis_url)
    _broker.add_middleware(AsyncIO())
    dramatiq.set_broker(_broker)
else:
    dramatiq.set_broker(RedisBroker(url=_redis_url))

_resources: dict[str, Any] = {}


def _sync_resources() -> tuple[Any, Any]:
    if "pool" not in _resources:
        import httpx
        from psycopg_pool import ConnectionPool

        _resources["pool"] = ConnectionPool(
            _database_url, min_size=4, max_size=8, kwargs={"autocommit": True}
        )
        _resources["http"] = httpx.Client(base_url=_psp_url)
    return _resources["pool"], _resources["http"]


async def _async_resources() -> tuple[Any, Any]:
    if "apool" not in _resources:
        import httpx
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            _database_url, min_size=4, max_size=8, kwargs={"autocommit": True}, open=False
        )
        await pool.open()
        _resources["apool"] = pool
        _resources["ahttp"] = httpx.AsyncClient(base_url=_psp_url)
    return _resources["apool"], _resources["ahttp"]


def drive_sync(operation_id: str, payment_id: str) -> None:
    from psycopg.types.json import Jsonb

    pool, http = _sync_resources()
    with pool.connection() as conn, conn.transaction():
        conn.execute(_LOCK_OPERATION, (operation_id,)).fetchone()
        conn.execute(_COUNT_TRY, (operation_id,))
    with pool.connection() as conn:
        payment = conn.execute(_READ_PAYMENT, (payment_id,)).fetchone()
    answer = http.post(
        "/charge",
        json={"reference": payment[0], "amount": payment[1]},
        headers={"Idempotency-Key": operation_id},
    ).json()
    with pool.connection() as conn, conn.transaction():
        conn.execute(_LOCK_PAYMENT, (payment_id,)).fetchone()
        conn.execute(_MOVE, (answer["id"], payment_id))
        conn.execute(_EVENT, (payment_id,))
        conn.execute(_OUTBOX, (payment_id, Jsonb(answer)))
        conn.execute(_CLOSE, (operation_id,))


async def drive_async(operation_id: str, payment_id: str) -> None:
    from psycopg.types.json import Jsonb

    pool, http = await _async_resources()
    async with pool.connection() as conn, conn.transaction():
        await (await conn.execute(_LOCK_OPERATION, (operation_id,))).fetchone()
        await conn.execute(_COUNT_TRY, (operation_id,))
    async with pool.connection() as conn:
        payment = await (await conn.execute(_READ_PAYMENT, (payment_id,))).fetchone()
    response = await http.post(
        "/charge",
        json={"reference": payment[0], "amount": payment[1]},
        headers={"Idempotency-Key": operation_id},
    )
    answer = response.json()
    async with pool.connection() as conn, conn.transaction():
        await (await conn.execute(_LOCK_PAYMENT, (payment_id,))).fetchone()
        await conn.execute(_MOVE, (answer["id"], payment_id))
        await conn.execute(_EVENT, (payment_id,))
        await conn.execute(_OUTBOX, (payment_id, Jsonb(answer)))
        await conn.execute(_CLOSE, (operation_id,))


_DRIVE: Any = drive_async if MODE == "async" else drive_sync
drive: Any = dramatiq.actor(queue_name=QUEUE, actor_name="drive", max_retries=0)(_DRIVE)


# --- the PSP: answers every charge at once ----------------------------------------


def psp_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def charge(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"id": f"psp_{body['reference']}", "status": "captured", **body})

    return Starlette(routes=[Route("/charge", charge, methods=["POST"])])


# --- the run --------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _tree(pid: int) -> list[int]:
    found = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += _tree(int(child))
    return found


def _postgres_cpu(postmaster: int) -> float:
    """The server's CPU so far: its live processes, and the exited backends
    the postmaster has reaped (cutime, cstime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / ticks
    return reaped + _cpu_seconds(_tree(postmaster))


def run_mode(
    mode: str, payments: int, env: dict[str, str], database_url: str, postmaster: int
) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_SCHEMA)
        ids = [(f"op_{uuid.uuid4().hex}", f"pay_{uuid.uuid4().hex}") for _ in range(payments)]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rc_payments (id, status, amount) VALUES (%s, 'PENDING', 1999)",
                [(p,) for _, p in ids],
            )
            cursor.executemany(
                "INSERT INTO rc_operations (id, payment_id, status) VALUES (%s, %s, 'pending')",
                ids,
            )
    workers = subprocess.Popen(
        [
            *(sys.executable, "-m", "dramatiq", "bench.runtime_choice"),
            *("--processes", "2", "--threads", "8", "--queues", QUEUE),
        ],
        env={**env, "RUNTIME_CHOICE_MODE": mode, "dramatiq_worker_timeout": "100"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(4)  # the worker processes start and connect
    worker_pids = _tree(workers.pid)
    cpu_before = (_cpu_seconds(worker_pids), _postgres_cpu(postmaster))
    started = time.monotonic()
    broker = dramatiq.get_broker()
    for operation_id, payment_id in ids:
        broker.enqueue(drive.message(operation_id, payment_id))
    with psycopg.connect(database_url, autocommit=True) as conn:

        def succeeded() -> int:
            row = conn.execute(
                "SELECT count(*) FROM rc_operations WHERE status = 'succeeded'"
            ).fetchone()
            return int(row[0]) if row else 0

        with contextlib.suppress(TimeoutError):  # "completed" below says how many
            wait_until(
                succeeded,
                holds=lambda done: done >= payments,
                timeout=300,
                what=f"{payments} operations to succeed",
            )
        seconds = time.monotonic() - started
        done = succeeded()
    cpu_after = (_cpu_seconds(worker_pids), _postgres_cpu(postmaster))
    workers.terminate()
    workers.wait(30)
    return {
        "mode": mode,
        "payments": payments,
        "completed": done,
        "seconds": round(seconds, 2),
        "perSecond": round(done / seconds, 1),
        "workerCpuMsPerPayment": round((cpu_after[0] - cpu_before[0]) * 1000 / done, 3),
        "postgresCpuMsPerPayment": round((cpu_after[1] - cpu_before[1]) * 1000 / done, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="runtime-choice.json")
    options = parser.parse_args()
    from stack.ports import free_ports
    from stack.postgres import PostgresServer
    from stack.postgres import cluster_folder
    from stack.redis import RedisServer

    root = Path(tempfile.mkdtemp(prefix="runtime-choice-"))
    os.chmod(root, 0o755)  # noqa: S103 (the postgres service user must reach it)
    pg_port, redis_port, psp_port = free_ports(3)
    postgres = PostgresServer(cluster_folder(root), pg_port, "rc", root / "postgres.log")
    postgres.initialize()
    postgres.start()
    redis_server = RedisServer(root / "redis", redis_port, "rc", root / "redis.log")
    redis_server.start()
    serve_psp = (
        "import uvicorn, bench.runtime_choice as m;"
        f" uvicorn.run(m.psp_app(), host='127.0.0.1', port={psp_port}, log_level='warning')"
    )
    psp = subprocess.Popen(
        [sys.executable, "-c", serve_psp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        postgres.ensure_database("paystream")
        database_url = postgres.url("paystream")
        env = {
            **os.environ,
            "REDIS_URL": redis_server.url(),
            "DATABASE_URL": database_url,
            "PSP_URL": f"http://127.0.0.1:{psp_port}",
        }
        dramatiq.set_broker(RedisBroker(url=redis_server.url()))
        global drive
        drive = dramatiq.actor(queue_name=QUEUE, actor_name="drive", max_retries=0)(_DRIVE)
        postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
        time.sleep(2)
        results = []
        for _ in range(options.rounds):
            for mode in ("sync", "async"):
                result = run_mode(mode, options.payments, env, database_url, postmaster)
                print(json.dumps(result))
                results.append(result)
        Path(options.output).write_text(json.dumps(results, indent=2))
    finally:
        psp.terminate()
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
