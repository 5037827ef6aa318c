"""What a chaos run will do, drawn from its seed: its options (the PSP's
fault knobs among them), and which of the stack's faults fire when."""

from __future__ import annotations

import random
from dataclasses import dataclass

from drill.psps import PspFaults
from drill.runner import DrillOptions
from paystream.cli.options import Payments
from paystream.cli.options import option

KILLABLE = ("worker", "relay", "janitor", "gateway", "webhooks")
FAULT_KINDS = (
    *(f"kill_{name}" for name in KILLABLE),
    "redis_restart",
    "redis_flush",
    "postgres_terminate",
    "psp_outage",
    "endpoint_down",
)
# Faults fire between these shares of the payments done: late enough that
# traffic is flowing, early enough that the run outlives their effects.
FIRST, LAST = 0.05, 0.85


# The PSP's own faults during a chaos run, beside the scheduled ones: half
# the failed answers of a drill's, twice its webhooks duplicated and reordered.
CHAOS_PSP_FAULTS = PspFaults(
    timeout_rate=0.1,
    lost_response_rate=0.05,
    error_rate=0.05,
    webhook_duplicate_rate=0.2,
    webhook_reorder_rate=0.2,
)


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    at: float  # share of the payments done when it fires
    kind: str
    seconds: float  # how long it lasts (down time, outage)


@dataclass(frozen=True)
class ChaosOptions(DrillOptions):
    """A drill's options for a chaos run, and how long to wait for it to settle.
    The fields declared again without `option` are not options of `paystream
    chaos`: it takes the payments, their seed and concurrency, and the PSP."""

    payments: int = option(2000, Payments)
    faults: PspFaults = CHAOS_PSP_FAULTS
    endpoint_failures: int = 1
    # How long the system may take to settle once the faults stop.
    quiescence_timeout: float = 300.0


def fault_schedule(options: ChaosOptions) -> list[ScheduledFault]:
    """Every kind at least once, one more round per 1,000 payments."""
    draw = random.Random(f"chaos:{options.seed}")
    rounds = 1 + options.payments // 1000
    faults = [
        ScheduledFault(round(draw.uniform(FIRST, LAST), 3), kind, round(draw.uniform(0.5, 4.0), 1))
        for _ in range(rounds)
        for kind in FAULT_KINDS
    ]
    return sorted(faults, key=lambda fault: fault.at)
