"""`paystream bench`: the benchmarks, a command the tooling adds to the
`paystream` command line (entry point `paystream.commands`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bench.harness import SECTIONS, BenchOptions
from bench.report import print_results, write
from bench.run import planned_steps, run_bench
from bench.wrk import FALLBACK, wrk_version
from paystream.cli.options import GatewayWorkers, Threads, Workers
from paystream.cli.output import console


def bench(
    quick: Annotated[
        bool, typer.Option(help="Seconds, not minutes: small sizes (the suite runs this).")
    ] = False,
    out: Annotated[
        Path, typer.Option(help="Folder for results.json, results.md and chart.png.")
    ] = Path("bench-results"),
    gateway_workers: GatewayWorkers = 1,
    workers: Workers = 2,
    threads: Threads = 8,
    profile: Annotated[
        bool, typer.Option(help="Record py-spy profiles of the gateway and the workers.")
    ] = False,
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
    options = BenchOptions(
        quick=quick,
        gateway_workers=gateway_workers,
        workers=workers,
        threads=threads,
        profile=profile,
        sections=_sections(only),
    )
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
