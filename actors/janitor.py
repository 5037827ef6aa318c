"""The janitor: finds PSP operations left pending (a lost queue message, a
killed worker, a Redis flush, a PSP down longer than the worker's retries)
and re-drives them from Postgres on a growing schedule. What is still pending
after the last step is flagged for reconciliation: visible in the API, decided
by the settlement report or a person, never FAILED without the PSP's word.

Payments waiting for their customer to authenticate (REQUIRES_ACTION) are
checked on too: every `idle` while nothing is heard, and at their expiry,
a worker asks the PSP how it ended (`actors.authentication`).

Its own process (`paystream janitor`); several can run, they skip each
other's rows. Each sweep also re-drives PSP callbacks stored but never
applied, deletes expired idempotency records, and seals the audit log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from actors.outcomes import flag
from payments.status import EventSource
from store.audit import seal
from store.db import connection
from store.errors import StoreUnavailable
from store.idempotency import purge_expired
from store.operations import claim_stalled_operations
from store.operations import schedule_next_check
from store.payments import claim_authentication_checks
from store.webhook_inbox import stalled_inbox

logger = logging.getLogger("paystream.janitor")


@dataclass(frozen=True, slots=True)
class JanitorPolicy:
    # Untouched this long, a pending operation has lost its worker.
    idle: timedelta
    # Re-drive after each delay in turn; flag once they are used up.
    schedule: Sequence[timedelta]
    batch: int = 500


@dataclass(frozen=True, slots=True)
class Nudges:
    """How the janitor hands work back to the workers."""

    operation: Callable[[str], object]
    webhook: Callable[[str], object]
    # A payment awaiting its customer, to ask its PSP about.
    authentication: Callable[[str], object]


@dataclass(frozen=True, slots=True)
class Sweep:
    redriven: int
    flagged: int
    webhooks: int
    purged: int
    authentications: int = 0


def sweep(pool: ConnectionPool[Any], policy: JanitorPolicy, nudges: Nudges) -> Sweep:
    to_redrive: list[str] = []
    to_flag: list[tuple[str, str]] = []
    with connection(pool) as conn, conn.transaction():
        for operation in claim_stalled_operations(conn, idle=policy.idle, limit=policy.batch):
            if operation.janitor_checks >= len(policy.schedule):
                to_flag.append((operation.payment_id, operation.id))
                continue
            schedule_next_check(conn, operation.id, policy.schedule[operation.janitor_checks])
            to_redrive.append(operation.id)
    # Nudges go out after commit, so a worker never sees the old schedule.
    for operation_id in to_redrive:
        nudges.operation(operation_id)
    steps = len(policy.schedule)
    for payment_id, operation_id in to_flag:
        reason = f"no word from the PSP after {steps} janitor re-drives"
        flag(pool, payment_id, operation_id, reason, source=EventSource.JANITOR)
    with connection(pool) as conn:
        # PSP callbacks stored but never applied (their nudge was lost with Redis).
        webhooks = stalled_inbox(conn, idle=policy.idle, limit=policy.batch)
        awaiting = claim_authentication_checks(conn, idle=policy.idle, limit=policy.batch)
        purged = purge_expired(conn)
        seal(conn)  # chain the audit rows written since the last sweep
    for inbox_id in webhooks:
        nudges.webhook(inbox_id)
    for payment_id in awaiting:
        nudges.authentication(payment_id)
    if to_redrive or to_flag or webhooks or awaiting:
        logger.info(
            "re-drove %d operation(s) and %d webhook(s), flagged %d, checked %d authentication(s)",
            len(to_redrive),
            len(webhooks),
            len(to_flag),
            len(awaiting),
        )
    return Sweep(len(to_redrive), len(to_flag), len(webhooks), purged, len(awaiting))


def run(
    pool: ConnectionPool[Any],
    policy: JanitorPolicy,
    nudges: Nudges,
    *,
    interval: float,
    stop: threading.Event,
) -> None:
    logger.info(
        "janitor started: idle %s, schedule %s",
        policy.idle,
        ", ".join(str(step) for step in policy.schedule),
    )
    while not stop.is_set():
        try:
            sweep(pool, policy, nudges)
        except StoreUnavailable as error:
            logger.warning("janitor sweep skipped, Postgres unavailable: %s", error)
        except Exception:
            logger.exception("janitor sweep failed; trying again next interval")
        stop.wait(interval)
