"""The options that more than one command takes, each written once: the
product's commands and the tooling's (`paystream up`, `drill`, `chaos`,
`bench`) use these types, and each command keeps its own default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]
Workers = Annotated[int, typer.Option(help="Dramatiq worker processes.")]
Threads = Annotated[int, typer.Option(help="Threads per worker process.")]
GatewayWorkers = Annotated[int, typer.Option(help="Gateway (uvicorn) processes.")]
Payments = Annotated[int, typer.Option(help="How many payments.")]
Concurrency = Annotated[int, typer.Option(help="Payments in flight at once.")]
Report = Annotated[Path, typer.Option(help="Where to write the JSON report.")]
