"""`paystream chaos`: a drill with the stack's own processes and servers
misbehaving too, on a schedule drawn from the seed, then every money
invariant checked, reconciliation included.

Faults beside the PSP's (timeouts, lost answers, errors, answers only a
callback tells; callbacks delayed, duplicated, reordered): SIGKILL and restart
of the worker, relay, janitor, gateway and webhook processes; a Redis restart
and a Redis flush; every Postgres backend terminated mid-transaction; a PSP
outage window; a merchant endpoint down for a while. Each fires when a given
share of the payments is done, so the same seed gives the same workload and
the same schedule.

What runs when: the schedule in `chaos_plan`, the injectors in `saboteur`,
the wait for the system to settle in `quiescence`, the checks beyond the
drill's in `proofs`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from drill import proofs
from drill.chaos_plan import FAULT_KINDS
from drill.chaos_plan import ChaosOptions
from drill.chaos_plan import ScheduledFault
from drill.chaos_plan import fault_schedule
from drill.checks import Check
from drill.checks import Verdict
from drill.checks import every_event_reached_the_merchant
from drill.psps import PspUnderTest
from drill.quiescence import wait_for_quiescence
from drill.receiver import serving_receiver
from drill.runner import check_payments
from drill.runner import events_of
from drill.runner import prepare
from drill.runner import run_payments
from drill.saboteur import Saboteur
from stack.launcher import Stack


@dataclass
class ChaosReport(Verdict):
    options: ChaosOptions
    schedule: list[ScheduledFault]
    injected: Counter[str] = field(default_factory=Counter)
    psp_faults: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return self.report_json(
            schedule=[asdict(fault) for fault in self.schedule],
            faultsInjected=dict(self.injected),
            pspFaults=self.psp_faults,
        )


def run_chaos(
    stack: Stack,
    psp: PspUnderTest,
    options: ChaosOptions,
    on_payment_done: Callable[[], None] = lambda: None,
) -> ChaosReport:
    info = stack.info
    assert info is not None
    started = time.monotonic()
    schedule = fault_schedule(options)
    report = ChaosReport(options, schedule)
    with serving_receiver() as receiver:
        endpoint_id = prepare(info, psp, receiver, options)
        saboteur = Saboteur(stack, psp, receiver, schedule, options.payments, report.injected)

        def done() -> None:
            saboteur.payment_done()
            on_payment_done()

        saboteur.start()
        try:
            runs = run_payments(info, psp, options, done)
        finally:
            saboteur.finish()
        report.psp_faults = psp.faults(callbacks="callbacks")
        psp.calm()
        receiver.down_until = 0.0
        quiet = wait_for_quiescence(info, options.quiescence_timeout)
        checks, payment_ids, book = check_payments(info, psp, runs)
        report.checks = [quiet, *checks]
        events = events_of(info.database_url, payment_ids)
        report.checks.append(
            every_event_reached_the_merchant(events, receiver, endpoint_id, info.database_url)
        )
        report.checks.append(proofs.event_log_has_no_gaps(info))
        report.checks.extend(proofs.books(stack, info, psp, payment_ids, book))
        report.checks.append(proofs.audit_chain_verifies(stack))
        report.checks.append(_every_fault_injected(report, psp))
    report.seconds = time.monotonic() - started
    return report


def _every_fault_injected(report: ChaosReport, psp: PspUnderTest) -> Check:
    check = Check("every fault kind was injected at least once")
    check.counts = dict(sorted(report.injected.items()))
    for kind in FAULT_KINDS:
        if not report.injected[kind]:
            check.fail(f"{kind} never fired")
    for fate in psp.fates:
        if not report.psp_faults.get(fate):
            check.fail(f"the PSP never met a {fate}")
    for done in psp.callbacks:
        if not report.psp_faults.get(f"callbacks {done}"):
            check.fail(f"no PSP callback was {done}")
    return check


def dump_json(report: ChaosReport) -> str:
    return json.dumps(report.to_json(), indent=2)
