"""`paystream drill` and `paystream chaos`: payments on a stack of their own
under faults, then every money invariant checked. Commands the tooling adds
to the `paystream` command line (entry points `paystream.commands`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.progress import Progress

from drill.chaos import dump_json
from drill.chaos import run_chaos
from drill.chaos_plan import ChaosOptions
from drill.chaos_plan import fault_schedule
from drill.psps import PspUnderTest
from drill.psps import psp_under_test
from drill.report import print_checks
from drill.report import print_report
from drill.runner import DRILL_SETTINGS
from drill.runner import DrillOptions
from drill.runner import run_drill
from paystream.cli.options import Report
from paystream.cli.options import Workers
from paystream.cli.options import taking_options
from paystream.cli.output import console
from stack.launcher import Stack
from stack.scratch import scratch_stack


def _local_only(psp: str) -> None:
    """A drill turns its PSP's faults: never Stripe itself."""
    if psp == "stripe" and os.environ.get("STRIPE_API_KEY"):
        raise typer.BadParameter(
            "a drill on Stripe runs on localstripe: unset STRIPE_API_KEY", param_hint="--psp"
        )


def _psp_of(stack: Stack, psp: str) -> PspUnderTest:
    info = stack.info
    assert info is not None
    return psp_under_test(info, psp, stack.env.get("PAYSTREAM_PSP_API_KEY", ""))


@taking_options
def drill(
    options: DrillOptions,
    report: Report = Path("drill-report.json"),
    workers: Workers = 2,
) -> None:
    """Run payments through a faulty PSP, then check every money invariant.

    The payments run on a stack of its own, and the invariants are checked
    against the PSP's book. Exit code 1 on any violation."""
    psp, seed = options.psp, options.seed
    _local_only(psp)
    with scratch_stack(
        "paystream-drill-", workers=workers, env=DRILL_SETTINGS, psps=[psp]
    ) as stack:
        with console.status(f"starting a stack on {psp} for the drill"):
            info = stack.start()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"drill on {psp}, seed {seed}", total=options.payments)
            result = run_drill(info, options, lambda: progress.advance(task), _psp_of(stack, psp))
    report.write_text(json.dumps(result.to_json(), indent=2))
    print_report(console, result)
    console.print(f"report written to {report}")
    raise typer.Exit(0 if result.passed else 1)


@taking_options
def chaos(options: ChaosOptions, report: Report = Path("chaos-report.json")) -> None:
    """Run payments on a stack of its own under chaos, then check every money invariant.

    While the payments run it kills the stack's processes, restarts and
    flushes Redis, cuts Postgres connections and fails the PSP and the
    merchant's endpoint, on a schedule drawn from the seed. Exit code 1 on any
    violation."""
    payments, seed, psp = options.payments, options.seed, options.psp
    _local_only(psp)
    schedule = fault_schedule(options)
    console.print(f"chaos on {psp}: {payments} payments, seed {seed}; replay with --seed {seed}")
    console.print("fault schedule (share of payments done: fault, seconds):")
    console.print("  " + "; ".join(f"{f.at:.0%} {f.kind} {f.seconds}s" for f in schedule))
    with scratch_stack("paystream-chaos-", env=DRILL_SETTINGS, psps=[psp]) as stack:
        with console.status(f"starting a stack on {psp} for the chaos run"):
            stack.start()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"chaos on {psp}, seed {seed}", total=payments)
            result = run_chaos(stack, _psp_of(stack, psp), options, lambda: progress.advance(task))
    report.write_text(dump_json(result))
    console.print("PSP faults: " + ", ".join(f"{k} {v}" for k, v in result.psp_faults.items()))
    print_checks(console, result.checks, title=f"chaos, seed {seed}: {result.seconds:.0f} s")
    console.print(f"report written to {report}")
    raise typer.Exit(0 if result.passed else 1)
