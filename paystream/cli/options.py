"""The options that more than one command takes, each written once: the
product's commands and the tooling's (`paystream up`, `drill`, `chaos`,
`bench`) use these types, and each command keeps its own default. The
commands that talk to a stack take `StackDir` and call `talk_to_stack` first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from paystream.cli.output import console
from paystream.local_stack import NoStack, use_stack

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]
Workers = Annotated[int, typer.Option(help="Dramatiq worker processes.")]
Threads = Annotated[int, typer.Option(help="Threads per worker process.")]
GatewayWorkers = Annotated[int, typer.Option(help="Gateway (uvicorn) processes.")]
Payments = Annotated[int, typer.Option(help="How many payments.")]
Concurrency = Annotated[int, typer.Option(help="Payments in flight at once.")]
Report = Annotated[Path, typer.Option(help="Where to write the JSON report.")]
StackDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="The local stack to talk to when DATABASE_URL is not set (`paystream up` wrote it).",
    ),
]


def talk_to_stack(data_dir: Path) -> None:
    """Settle which stack this command talks to, and say it on standard error;
    exit code 2, saying how to name one, when there is none."""
    try:
        print(use_stack(data_dir), file=sys.stderr)
    except NoStack as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
