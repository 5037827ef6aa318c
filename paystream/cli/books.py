"""The books from the command line: reconcile a settlement report, verify
the ledger, verify the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.progress import BarColumn
from rich.progress import DownloadColumn
from rich.progress import Progress
from rich.progress import TransferSpeedColumn
from rich.table import Table

from payments.reconciliation import FINAL_CLASSES
from paystream.bootstrap import configure_actors
from paystream.cli.options import StackDir
from paystream.cli.options import talk_to_stack
from paystream.cli.output import console
from paystream.connectors import build_connectors
from paystream.connectors import configured_routing
from paystream.local_stack import DEFAULT_DATA_DIR
from paystream.settings import settings
from psp.protocol import Connector
from psp.protocol import UnknownConnector
from store.audit import seal
from store.audit import verify as verify_audit
from store.db import connect
from store.db import connection
from store.ledger import verify as verify_ledger
from store.pool import open_pool
from store.reconciliation_runs import create_run
from store.reconciliation_runs import list_breaks
from store.reconciliation_runs import mark_run
from store.settlement_reports import BadReport
from store.settlement_reports import copy_report
from store.settlement_reports import report_carries_card_number
from telemetry.logs import configure_logging

ledger_app = typer.Typer(help="The ledger.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


def reconcile(
    report: Annotated[
        Path | None, typer.Argument(help="A settlement report (CSV) to reconcile.")
    ] = None,
    psp_batch: Annotated[
        str | None, typer.Option(help="Fetch this settlement batch (YYYY-MM-DD) from the PSP.")
    ] = None,
    psp_name: Annotated[
        str | None,
        typer.Option(
            "--psp", help="Whose report: a PSP of PAYSTREAM_PSPS (default: the routing default)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON.")
    ] = None,
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """Reconcile a PSP's settlement report against its payments, and print the breaks.

    A report file is checked against the PSP's own data for its batches first:
    only what the PSP bears out is settled or resolved."""
    talk_to_stack(data_dir)
    if (report is None) == (psp_batch is None):
        console.print("[red]give a report file, or --psp-batch[/red]")
        raise typer.Exit(2)
    configure_logging("WARNING", "console")
    psp = _connector(psp_name)
    configure_actors(settings())  # before anything imports `actors`
    from actors.errors import TryAgain
    from actors.reconciliation import UncheckableReport
    from actors.reconciliation import run_reconciliation

    pool = open_pool(settings().database_url, max_size=4)
    try:
        with Progress(
            *Progress.get_default_columns()[:-1],
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        ) as progress:
            if report is not None:
                task = progress.add_task(f"loading {report.name}", total=report.stat().st_size)
                chunks = _read_chunks(report, lambda n: progress.advance(task, n))
            else:
                task = progress.add_task(f"fetching batch {psp_batch}", total=None)
                chunks = _counted(
                    psp.settlement_report(str(psp_batch)), lambda n: progress.advance(task, n)
                )
            try:
                with connection(pool) as conn, conn.transaction():
                    run_id = create_run(
                        conn, None, "upload" if report else "psp", psp_batch, psp=psp.name
                    )
                    lines = copy_report(conn, run_id, chunks)
                    if report_carries_card_number(conn, run_id):
                        raise BadReport("it carries what looks like a card number; nothing is kept")
            except BadReport as error:
                console.print(f"[red]the report cannot be read:[/red] {error}")
                raise typer.Exit(1) from None
            progress.update(task, description=f"matching {lines} lines")
            try:
                counts = run_reconciliation(pool, psp, run_id)
            except TryAgain as error:
                # A worker would retry later; from here, the operator does.
                with connection(pool) as conn:
                    mark_run(conn, run_id, "failed", error=str(error)[:500])
                console.print(
                    f"[red]the PSP cannot be asked now; run it again later:[/red] {error}"
                )
                raise typer.Exit(1) from None
            except (BadReport, UncheckableReport) as error:
                console.print(f"[red]the report cannot be checked:[/red] {error}")
                raise typer.Exit(1) from None
        _print_reconciliation(pool, run_id, lines, counts, output)
    finally:
        pool.close()


def _connector(name: str | None) -> Connector:
    """The named PSP's connector, by default the routing table's default PSP's."""
    connectors = build_connectors(settings())
    try:
        return connectors[name or configured_routing(settings()).default]
    except UnknownConnector:
        console.print(
            f"[red]no PSP named {name} is configured (PAYSTREAM_PSPS:"
            f" {', '.join(connectors.names())})[/red]"
        )
        raise typer.Exit(2) from None


def _read_chunks(path: Path, advance: Any, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            advance(len(chunk))
            yield chunk


def _counted(chunks: Iterator[bytes], advance: Any) -> Iterator[bytes]:
    for chunk in chunks:
        advance(len(chunk))
        yield chunk


def _print_reconciliation(
    pool: Any, run_id: str, lines: int, counts: dict[str, int], output: Path | None
) -> None:
    table = Table("class", "count", title=f"reconciliation {run_id}: {lines} lines")
    for name in FINAL_CLASSES:
        table.add_row(name, str(counts.get(name, 0)))
    table.add_row("(resolved from PENDING)", str(counts.get("resolved", 0)))
    console.print(table)
    with connection(pool) as conn:
        breaks = list_breaks(conn, run_id, class_=None, limit=20, starting_after=None)
    for found in breaks:
        where = f"line {found.line_number}" if found.line_number else "ours"
        console.print(
            f"  {found.class_:<19} {where:<10} {found.record_type:<10}"
            f" {found.reference}: {found.reason}"
        )
    if output is not None:
        output.write_text(
            json.dumps({"reconciliationId": run_id, "lines": lines, "counts": counts}, indent=2)
        )


@ledger_app.command("verify")
def ledger_verify(data_dir: StackDir = DEFAULT_DATA_DIR) -> None:
    """Audit the books: trial balance, every entry balanced, every capture and refund posted.

    Exit code 1 on any failure."""
    talk_to_stack(data_dir)
    with connect(settings().database_url) as conn:
        findings = verify_ledger(conn)
    table = Table("check", "result", "looked at")
    for finding in findings:
        result = (
            "[green]ok[/green]"
            if not finding.failures
            else f"[red]{len(finding.failures)} failure(s)[/red]"
        )
        table.add_row(finding.check, result, str(finding.counted))
    console.print(table)
    for finding in findings:
        for failure in finding.failures:
            console.print(f"[red]✗[/red] {finding.check}: {failure}")
    raise typer.Exit(0 if all(not f.failures for f in findings) else 1)


@audit_app.command("verify")
def audit_verify(data_dir: StackDir = DEFAULT_DATA_DIR) -> None:
    """Seal the audit log, then check every row's hash and the whole chain.

    Names each row edited, deleted, reordered or slipped in. Exit code 1 if
    any."""
    talk_to_stack(data_dir)
    with connect(settings().database_url, autocommit=True) as conn:
        sealed_now = seal(conn)
        verdict = verify_audit(conn)
    console.print(
        f"audit log: {verdict.sealed} rows sealed ({sealed_now} just now), "
        f"{verdict.unsealed} newer than the last seal; head {verdict.head}"
    )
    for problem in verdict.problems:
        console.print(f"[red]✗[/red] {problem}")
    console.print(
        "[green]the chain verifies[/green]" if verdict.intact else "[red]tampering found[/red]"
    )
    raise typer.Exit(0 if verdict.intact else 1)
