"""`paystream bench`: the benchmarks, a command the tooling adds to the
`paystream` command line (entry point `paystream.commands`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import SpinnerColumn
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

from bench.compare import compare
from bench.harness import SECTIONS
from bench.harness import BenchOptions
from bench.report import print_results
from bench.report import write
from bench.run import planned_steps
from bench.run import run_bench
from bench.wrk import FALLBACK
from bench.wrk import wrk_version
from paystream.cli.options import taking_options
from paystream.cli.output import console


@taking_options
def bench(
    options: BenchOptions,
    out: Annotated[
        Path, typer.Option(help="Folder for results.json, results.md and chart.png.")
    ] = Path("bench-results"),
    only: Annotated[
        str,
        typer.Option(help="Run only these sections, comma-separated: " + ", ".join(SECTIONS) + "."),
    ] = ",".join(SECTIONS),
) -> None:
    """Measure paystream on a stack of its own, each figure next to a ceiling or a peer.

    The ceilings and peers are measured in the same run: ingress against bare
    Starlette, end to end against a Dramatiq no-op, reconciliation against
    DuckDB; idempotency and the ledger too. Prints a table, writes JSON and a
    chart."""
    options = replace(options, sections=_sections(only))
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting a stack for the benchmark", total=planned_steps(options))
        begun = False

        def say(text: str) -> None:
            nonlocal begun
            console.log(text)
            progress.update(task, description=text, advance=1 if begun else 0)
            begun = True

        if wrk_version() == FALLBACK:
            console.print(f"[yellow]load generator: {FALLBACK}[/yellow]")
        results = run_bench(options, out, say, lambda info: console.log("the stack is up"))
        progress.update(task, completed=planned_steps(options))
    print_results(console, results)
    written = write(results, out)
    console.print("written: " + ", ".join(str(path) for path in written))


def _sections(only: str) -> tuple[str, ...]:
    """The sections named, in the run's own order; an unknown name stops here."""
    named = {name.strip() for name in only.split(",") if name.strip()}
    if unknown := named - set(SECTIONS):
        raise typer.BadParameter(
            f"no such section: {', '.join(sorted(unknown))} (sections: {', '.join(SECTIONS)})",
            param_hint="--only",
        )
    return tuple(section for section in SECTIONS if section in named)


def bench_compare(
    revisions: Annotated[
        list[str], typer.Argument(help="Two or more revisions (commits, branches, HEAD).")
    ],
    payments: Annotated[int, typer.Option(help="Payments in each round's burst.")] = 3000,
    rounds: Annotated[int, typer.Option(help="Rounds of each revision, in turn.")] = 3,
    out: Annotated[Path, typer.Option(help="Where the rounds are written as JSON.")] = Path(
        "bench-results/compare.json"
    ),
) -> None:
    """Revisions side by side, end to end, in alternating rounds on this machine.

    Each revision runs from a worktree of its own (its own code and lock
    file) under its own `paystream up`; each round sends a burst of payments
    and waits until every accepted one is CAPTURED. Prints each revision's
    median payments per second and CPU per payment, and writes every round."""
    if len(revisions) < 2:
        raise typer.BadParameter("name at least two revisions", param_hint="REVISIONS")
    results = compare(revisions, payments=payments, rounds=rounds, say=console.log)
    table = Table("revision", "payments/s (median)", "CPU ms a payment (median)", "rounds")
    for revision, median in results["medians"].items():
        shown = [row for row in results["rounds"] if row["revision"] == revision]
        table.add_row(
            revision,
            f"{median['perSecond']:,.1f}",
            f"{median['cpuMsPerPayment']:.2f}",
            ", ".join(f"{row['perSecond']}/s {row['cpuMsPerPayment']} ms" for row in shown),
        )
    console.print(table)
    for revision, ratio in results["againstFirst"].items():
        console.print(
            f"{revision} against {revisions[0]}, round by round: "
            f"{ratio['perSecond']:.3f} times the payments per second, "
            f"{ratio['cpuMsPerPayment']:.3f} times the CPU per payment"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {out}")
