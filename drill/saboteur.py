"""The fault injectors of a chaos run: a thread that fires each scheduled
fault once its share of the payments is done."""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg
import redis

from drill.chaos_plan import ScheduledFault
from drill.psps import PspUnderTest
from drill.receiver import Receiver
from stack.launcher import Stack


class Saboteur:
    """Fires the scheduled faults as the payments get done, counting each
    kind it fired in `injected`."""

    def __init__(
        self,
        stack: Stack,
        psp: PspUnderTest,
        receiver: Receiver,
        schedule: list[ScheduledFault],
        total: int,
        injected: Counter[str],
    ) -> None:
        self._stack, self._psp, self._receiver = stack, psp, receiver
        self._injected = injected
        self._pending = list(schedule)
        self._total = total
        self._done = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="saboteur", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def payment_done(self) -> None:
        with self._lock:
            self._done += 1
        self._wake.set()

    def finish(self) -> None:
        """Fire what is left (a short run may end first), then stop."""
        with self._lock:
            self._done = self._total
        self._wake.set()
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while self._pending:
            self._wake.wait(0.5)
            self._wake.clear()
            with self._lock:
                share = self._done / self._total
            while self._pending and self._pending[0].at <= share:
                fault = self._pending.pop(0)
                self._inject(fault)
                self._injected[fault.kind] += 1
            if self._stop.is_set() and not self._pending:
                return

    def _inject(self, fault: ScheduledFault) -> None:
        stack, info = self._stack, self._stack.info
        assert info is not None
        if fault.kind.startswith("kill_"):
            name = fault.kind.removeprefix("kill_")
            stack.processes[name].kill()
            time.sleep(fault.seconds)
            stack.restart(name)
        elif fault.kind == "redis_restart":
            stack.restart_redis()
        elif fault.kind == "redis_flush":
            with redis.Redis.from_url(info.redis_url) as client:
                client.flushall()
        elif fault.kind == "postgres_terminate":
            with psycopg.connect(info.database_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                )
        elif fault.kind == "psp_outage":
            self._psp.outage(fault.seconds)
        elif fault.kind == "endpoint_down":
            self._receiver.down_until = time.monotonic() + 3 * fault.seconds
