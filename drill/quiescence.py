"""After a chaos run's faults (the PSP calmed): a wait until the system has
nothing left to do, and how long that took."""

from __future__ import annotations

import time

import psycopg

from drill.checks import Check
from stack.description import StackInfo
from stack.ports import wait_until
from store.errors import StoreUnavailable
from store.outbox import outbox_tally


def wait_for_quiescence(info: StackInfo, timeout: float) -> Check:
    """Until nothing is left to do: no pending PSP call or callback, every event
    published, taken in and delivered."""
    check = Check("the system settles once the faults stop")
    queries = {
        "pending operations": "SELECT count(*) FROM payment_operations"
        " WHERE status = 'pending' AND flagged_at IS NULL",
        "pending callbacks": "SELECT count(*) FROM webhook_inbox WHERE status = 'pending'",
        "deliveries pending": "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
    }
    started = time.monotonic()
    # The last moment each kind of work was still left: what settling waited on.
    last_seen: dict[str, float] = {}

    def work_left() -> dict[str, int]:
        try:
            with psycopg.connect(info.database_url) as conn:
                left = {name: int(conn.execute(sql).fetchone()[0]) for name, sql in queries.items()}  # type: ignore[index]
                outbox = outbox_tally(conn)
            assert outbox is not None
            left["unpublished events"] = outbox.events - outbox.published
            left["events not taken in"] = outbox.events - outbox.fanned_out
        except (psycopg.OperationalError, StoreUnavailable):
            left = {"database": 1}
        now = time.monotonic()
        last_seen.update({name: now - started for name, count in left.items() if count})
        return left

    try:
        left = wait_until(
            work_left,
            holds=lambda left: not any(left.values()),
            timeout=timeout,
            what="the system to settle",
            interval=1.0,
        )
    except TimeoutError:
        left = work_left()
    check.counts = {**left, "seconds to settle": round(time.monotonic() - started)}
    if last_seen:
        slowest = max(last_seen, key=last_seen.__getitem__)
        check.counts[f"seconds {slowest}"] = round(last_seen[slowest])
    for name, count in left.items():
        if count:
            check.fail(f"{count} {name} after {timeout:.0f} s")
    return check
