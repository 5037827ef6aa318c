"""The `paystream` command."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from paystream import __version__

app = typer.Typer(
    name="paystream",
    help="paystream: a payment gateway that never charges twice and proves its books.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage merchants' API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
operators_app = typer.Typer(
    help="Manage platform operators (who reconcile) and their keys.", no_args_is_help=True
)
app.add_typer(operators_app, name="operators")

console = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Folder for the stack's data and logs.")]


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


@app.command()
def up(
    data_dir: DataDir = Path(".paystream"),
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    simulator_port: Annotated[int, typer.Option(help="PSP simulator port.")] = 8001,
    pg_port: Annotated[int, typer.Option(help="Port of the Postgres it starts.")] = 54320,
    redis_port: Annotated[int, typer.Option(help="Port of the Redis it starts.")] = 63790,
    workers: Annotated[int, typer.Option(help="Dramatiq worker processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per worker process.")] = 8,
    gateway_workers: Annotated[int, typer.Option(help="Gateway (uvicorn) processes.")] = 1,
    tls: Annotated[
        bool, typer.Option("--tls", help="HTTPS for the gateway and the simulator (a local CA).")
    ] = False,
) -> None:
    """Run the whole stack on this machine until Ctrl-C."""
    from paystream.logs import configure_logging
    from paystream.stack.launcher import Stack, StackOptions

    configure_logging("WARNING", "console")
    stack = Stack(
        StackOptions(
            data_dir=data_dir,
            port=port,
            simulator_port=simulator_port,
            pg_port=pg_port,
            redis_port=redis_port,
            workers=workers,
            threads=threads,
            gateway_workers=gateway_workers,
            database_url=os.environ.get("DATABASE_URL"),
            redis_url=os.environ.get("REDIS_URL"),
            tls=tls,
        )
    )

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
    _print_stack(info.to_json(), stack.logs)
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


def _print_stack(info: dict[str, str | None], logs: Path) -> None:
    from paystream.stack.launcher import DEMO_MERCHANT

    rows = [
        ("gateway", f"{info['gatewayUrl']}  (OpenAPI at /openapi.json)"),
        ("console", f"{info['consoleUrl']}  (sign in with either key)"),
        ("metrics", f"{info['gatewayUrl']}/metrics  (Prometheus: every process of the stack)"),
        ("psp simulator", f"{info['simulatorUrl']}  (its book at /_book)"),
        ("api key", f"{info['apiKey']}  (merchant {DEMO_MERCHANT}, all merchant roles)"),
        ("operator key", f"{info['operatorKey']}  (a local operator: reconciliation, admin)"),
        ("postgres", _without_password(str(info["databaseUrl"]))),
        ("redis", _without_password(str(info["redisUrl"]))),
        ("logs", str(logs)),
        (
            "stack.json",
            f"{Path(str(info['dataDir'])) / 'stack.json'}  (all of the above, for scripts)",
        ),
    ]
    cacert = ""
    if info.get("caFile"):
        rows.append(("ca", f"{info['caFile']}  (the local CA: curl --cacert, httpx verify=)"))
        cacert = f" --cacert {info['caFile']}"
    body = '{"orderId":"order-1","amount":1999,"currency":"EUR","methodToken":"tok_visa"}'
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


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@app.command()
def migrate() -> None:
    """Apply the database migrations (DATABASE_URL)."""
    from paystream.settings import settings
    from store.migrate import migrate as apply

    applied = apply(settings().database_url)
    console.print(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@app.command()
def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the merchant API (uvicorn, uvloop, httptools)."""
    from paystream.serving import serve
    from paystream.settings import settings

    serve(
        "paystream.asgi:gateway",
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=settings().tls_cert_file,
        ssl_keyfile=settings().tls_key_file,
    )


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per process.")] = 8,
) -> None:
    """Run the Dramatiq workers that drive payments through the PSP."""
    # An idle Redis consumer backs off up to this long between polls; Dramatiq's
    # 1,000 ms default puts ~0.5 s on a quiet payment (DESIGN.md §8).
    os.environ.setdefault("dramatiq_worker_timeout", "100")
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "paystream.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
        # Finish in-flight PSP calls for up to 10 s on shutdown, then requeue.
        "--worker-shutdown-timeout",
        "10000",
    ]
    os.execv(sys.executable, argv)


@app.command()
def janitor() -> None:
    """Re-drive stalled PSP operations from Postgres; flag what stays unresolved."""
    from datetime import timedelta

    from paystream.bootstrap import configure_actors
    from paystream.logs import configure_logging
    from paystream.settings import schedule_seconds, settings
    from store.pool import open_pool

    configure_logging(settings().log_level, settings().log_format)
    configure_actors(settings())  # before anything imports `actors`
    from actors.janitor import JanitorPolicy, Nudges, run
    from actors.operations import drive_operation
    from actors.psp_webhooks import apply_psp_webhook

    policy = JanitorPolicy(
        idle=timedelta(seconds=settings().janitor_idle_seconds),
        schedule=[timedelta(seconds=s) for s in schedule_seconds(settings().janitor_schedule)],
    )
    stop = _stop_on_signals()
    pool = open_pool(settings().database_url, max_size=2)
    try:
        run(
            pool,
            policy,
            Nudges(
                operation=lambda operation_id: drive_operation.send(
                    operation_id, nudged_by="janitor"
                ),
                webhook=apply_psp_webhook.send,
            ),
            interval=settings().janitor_interval_seconds,
            stop=stop,
        )
    finally:
        pool.close()


@app.command()
def relay() -> None:
    """Publish outbox events to the Redis Stream `events` (at least once)."""
    import redis

    from paystream.bootstrap import configure_actors
    from paystream.logs import configure_logging
    from paystream.settings import settings
    from store.pool import open_pool

    configure_logging(settings().log_level, settings().log_format)
    configure_actors(settings())  # before anything imports `actors`
    from actors.relay import run

    stop = _stop_on_signals()
    pool = open_pool(settings().database_url, max_size=2)
    client = redis.Redis.from_url(settings().redis_url, socket_timeout=5)
    try:
        run(pool, client, stop=stop)
    finally:
        client.close()
        pool.close()


@app.command()
def webhooks() -> None:
    """Deliver events to merchant webhook endpoints (consumer group on `events`)."""
    from datetime import timedelta

    import redis

    from paystream.bootstrap import configure_actors
    from paystream.logs import configure_logging
    from paystream.settings import schedule_seconds, settings
    from store.pool import open_pool

    s = settings()
    configure_logging(s.log_level, s.log_format)
    configure_actors(s)  # before anything imports `actors`
    from actors.webhook_delivery import DeliveryPolicy, run

    policy = DeliveryPolicy(
        schedule=[timedelta(seconds=d) for d in schedule_seconds(s.webhook_retry_schedule)],
        timeout=s.webhook_timeout_seconds,
        allow_private=s.webhooks_allow_private,
    )
    stop = _stop_on_signals()
    pool = open_pool(s.database_url, max_size=4)
    # Blocking stream reads wait up to a second; the socket must wait longer.
    client = redis.Redis.from_url(s.redis_url, socket_timeout=10)
    try:
        run(pool, client, policy, stop=stop)
    finally:
        client.close()
        pool.close()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return stop


@app.command("psp-simulator")
def psp_simulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    latency_ms: Annotated[int, typer.Option(envvar="PAYSTREAM_SIM_LATENCY_MS")] = 0,
    jitter_ms: Annotated[int, typer.Option(envvar="PAYSTREAM_SIM_JITTER_MS")] = 0,
    error_rate: Annotated[float, typer.Option(envvar="PAYSTREAM_SIM_ERROR_RATE")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(envvar="PAYSTREAM_SIM_TIMEOUT_RATE")] = 0.0,
    lost_response_rate: Annotated[
        float, typer.Option(envvar="PAYSTREAM_SIM_LOST_RESPONSE_RATE")
    ] = 0.0,
    hang_ms: Annotated[int, typer.Option(envvar="PAYSTREAM_SIM_HANG_MS")] = 12_000,
    seed: Annotated[int | None, typer.Option(envvar="PAYSTREAM_SIM_SEED")] = None,
    outage: Annotated[
        list[str] | None,
        typer.Option(
            envvar="PAYSTREAM_SIM_OUTAGES",
            help="An outage window STARTS_IN:LASTS in seconds from start, e.g. 30:10; repeatable.",
        ),
    ] = None,
    webhook_only_rate: Annotated[
        float, typer.Option(envvar="PAYSTREAM_SIM_WEBHOOK_ONLY_RATE")
    ] = 0.0,
    webhook_delay_ms: Annotated[int, typer.Option(envvar="PAYSTREAM_SIM_WEBHOOK_DELAY_MS")] = 0,
    webhook_duplicate_rate: Annotated[
        float, typer.Option(envvar="PAYSTREAM_SIM_WEBHOOK_DUPLICATE_RATE")
    ] = 0.0,
    webhook_reorder_rate: Annotated[
        float, typer.Option(envvar="PAYSTREAM_SIM_WEBHOOK_REORDER_RATE")
    ] = 0.0,
) -> None:
    """Run the PSP simulator (a bank with fault knobs)."""
    from paystream.bootstrap import simulator_app
    from paystream.logs import configure_logging
    from paystream.serving import serve
    from paystream.settings import settings
    from psp.simulator.faults import FaultSettings, outage_windows
    from psp.simulator.webhooks import WebhookKnobs

    configure_logging(settings().log_level, settings().log_format)
    faults = FaultSettings(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        lost_response_rate=lost_response_rate,
        hang_ms=hang_ms,
        seed=seed,
        outages=outage_windows(outage or []),
        webhook_only_rate=webhook_only_rate,
    )
    webhooks = WebhookKnobs(
        delay_ms=webhook_delay_ms,
        duplicate_rate=webhook_duplicate_rate,
        reorder_rate=webhook_reorder_rate,
    )
    webhooks.validate()
    serve(
        simulator_app(settings(), faults, webhooks),
        host=host,
        port=port,
        ssl_certfile=settings().tls_cert_file,
        ssl_keyfile=settings().tls_key_file,
        graceful_seconds=5,
    )


@app.command()
def drill(
    payments: Annotated[int, typer.Option(help="How many payments.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the workload and the faults.")] = 1,
    timeout_rate: Annotated[float, typer.Option(help="Share of PSP calls that time out.")] = 0.2,
    lost_response_rate: Annotated[
        float, typer.Option(help="Share of PSP calls applied but never answered.")
    ] = 0.1,
    error_rate: Annotated[float, typer.Option(help="Share of PSP calls answered 5xx.")] = 0.1,
    webhook_only_rate: Annotated[
        float, typer.Option(help="Share of PSP calls whose outcome only a webhook tells.")
    ] = 0.05,
    webhook_duplicate_rate: Annotated[
        float, typer.Option(help="Share of PSP webhooks sent twice.")
    ] = 0.1,
    webhook_reorder_rate: Annotated[
        float, typer.Option(help="Share of PSP webhooks held back behind later ones.")
    ] = 0.1,
    endpoint_failures: Annotated[
        int, typer.Option(help="The merchant endpoint fails this many first tries per event.")
    ] = 1,
    concurrency: Annotated[int, typer.Option(help="Payments in flight at once.")] = 32,
    report: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path(
        "drill-report.json"
    ),
    workers: Annotated[int, typer.Option(help="Dramatiq worker processes.")] = 2,
) -> None:
    """Run payments through a faulty PSP on a stack of its own, then check every
    money invariant against the PSP's book. Exit code 1 on any violation."""
    from rich.progress import Progress

    from paystream.drill.report import print_report
    from paystream.drill.runner import DRILL_SETTINGS, DrillOptions, run_drill
    from paystream.stack.scratch import scratch_stack

    options = DrillOptions(
        payments=payments,
        seed=seed,
        concurrency=concurrency,
        timeout_rate=timeout_rate,
        lost_response_rate=lost_response_rate,
        error_rate=error_rate,
        webhook_only_rate=webhook_only_rate,
        webhook_duplicate_rate=webhook_duplicate_rate,
        webhook_reorder_rate=webhook_reorder_rate,
        endpoint_failures=endpoint_failures,
    )
    with scratch_stack("paystream-drill-", workers=workers, env=DRILL_SETTINGS) as stack:
        with console.status("starting a stack for the drill"):
            info = stack.start()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"drill, seed {seed}", total=payments)
            result = run_drill(info, options, lambda: progress.advance(task))
    report.write_text(json.dumps(result.to_json(), indent=2))
    print_report(console, result)
    console.print(f"report written to {report}")
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def reconcile(
    report: Annotated[
        Path | None, typer.Argument(help="A settlement report (CSV) to reconcile.")
    ] = None,
    psp_batch: Annotated[
        str | None, typer.Option(help="Fetch this settlement batch (YYYY-MM-DD) from the PSP.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON.")
    ] = None,
) -> None:
    """Reconcile a PSP settlement report against the books, and print the breaks.
    A report file is checked against the PSP's own data for its batches first:
    only what the PSP bears out is settled or resolved."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from paystream.bootstrap import configure_actors, psp_client_config
    from paystream.logs import configure_logging
    from paystream.settings import settings
    from psp.http_client import HttpPsp
    from store.pool import open_pool

    if (report is None) == (psp_batch is None):
        console.print("[red]give a report file, or --psp-batch[/red]")
        raise typer.Exit(2)
    configure_logging("WARNING", "console")
    configure_actors(settings())  # before anything imports `actors`
    from actors.errors import TryAgain
    from actors.reconciliation import UncheckableReport, run_reconciliation
    from store.reconciliation import (
        BadReport,
        copy_report_sync,
        create_run_sync,
        mark_run,
        report_carries_card_number_sync,
    )

    pool = open_pool(settings().database_url, max_size=4)
    psp = HttpPsp(psp_client_config(settings()))
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
                with pool.connection() as conn, conn.transaction():
                    run_id = create_run_sync(conn, None, "upload" if report else "psp", psp_batch)
                    lines = copy_report_sync(conn, run_id, chunks)
                    if report_carries_card_number_sync(conn, run_id):
                        raise BadReport("it carries what looks like a card number; nothing is kept")
            except BadReport as error:
                console.print(f"[red]the report cannot be read:[/red] {error}")
                raise typer.Exit(1) from None
            progress.update(task, description=f"matching {lines} lines")
            try:
                counts = run_reconciliation(pool, psp, run_id)
            except TryAgain as error:
                # A worker would retry later; from here, the operator does.
                with pool.connection() as conn:
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
        psp.close()
        pool.close()


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
    from rich.table import Table

    from payments.reconciliation import FINAL_CLASSES

    table = Table("class", "count", title=f"reconciliation {run_id}: {lines} lines")
    for name in FINAL_CLASSES:
        table.add_row(name, str(counts.get(name, 0)))
    table.add_row("(resolved from PENDING)", str(counts.get("resolved", 0)))
    console.print(table)
    with pool.connection() as conn:
        breaks = conn.execute(
            "SELECT line_number, class, record_type, reference, reason FROM reconciliation_results"
            " WHERE reconciliation_id = %s AND class <> 'matched' ORDER BY id LIMIT 20",
            (run_id,),
        ).fetchall()
    for line, class_, record_type, reference, reason in breaks:
        where = f"line {line}" if line else "ours"
        console.print(f"  {class_:<19} {where:<10} {record_type:<10} {reference}: {reason}")
    if output is not None:
        output.write_text(
            json.dumps({"reconciliationId": run_id, "lines": lines, "counts": counts}, indent=2)
        )


ledger_app = typer.Typer(help="The ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Audit the books: trial balance, every entry balanced, every capture and
    refund posted. Exit code 1 on any failure."""
    import psycopg
    from rich.table import Table

    from paystream.settings import settings
    from store.ledger import verify

    with psycopg.connect(settings().database_url) as conn:
        findings = verify(conn)
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


audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Seal the audit log, then recompute every row's hash and the whole chain;
    name each row edited, deleted, reordered or slipped in. Exit code 1 if any."""
    import psycopg

    from paystream.settings import settings
    from store.audit import seal, verify

    with psycopg.connect(settings().database_url, autocommit=True) as conn:
        sealed_now = seal(conn)
        verdict = verify(conn)
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


def _key_store() -> tuple[Any, bytes]:
    import psycopg

    from paystream.settings import require_secret, settings
    from store.audit import as_actor, system

    pepper = require_secret(settings().key_pepper, "key_pepper").encode()
    conn = psycopg.connect(settings().database_url)
    as_actor(conn, system("cli"))
    return conn, pepper


def _print_key(row: Any, key: str | None = None) -> None:
    print(json.dumps(_key_json(row, key)))


def _key_json(row: Any, key: str | None = None) -> dict[str, Any]:
    owner = {"operatorId": row.operator_id} if row.operator_id else {"merchantId": row.merchant_id}
    return {
        "keyId": row.id,
        **owner,
        "prefix": row.key_prefix,
        "roles": row.roles,
        "description": row.description,
        "createdAt": str(row.created_at),
        "revokedAt": str(row.revoked_at) if row.revoked_at else None,
        **({"apiKey": key} if key else {}),
    }


@app.command()
def chaos(
    payments: Annotated[int, typer.Option(help="How many payments.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the workload and the fault schedule.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Payments in flight at once.")] = 32,
    report: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path(
        "chaos-report.json"
    ),
) -> None:
    """Run payments on a stack of its own while killing its processes, restarting
    and flushing Redis, cutting Postgres connections and failing the PSP and the
    merchant's endpoint; then check every money invariant. Exit code 1 on any
    violation."""
    from rich.progress import Progress

    from paystream.drill.chaos import ChaosOptions, dump_json, fault_schedule, run_chaos
    from paystream.drill.report import print_checks
    from paystream.drill.runner import DRILL_SETTINGS
    from paystream.stack.scratch import scratch_stack

    options = ChaosOptions(payments=payments, seed=seed, concurrency=concurrency)
    schedule = fault_schedule(options)
    console.print(f"chaos: {payments} payments, seed {seed}; replay with --seed {seed}")
    console.print("fault schedule (share of payments done: fault, seconds):")
    console.print("  " + "; ".join(f"{f.at:.0%} {f.kind} {f.seconds}s" for f in schedule))
    with scratch_stack("paystream-chaos-", env=DRILL_SETTINGS) as stack:
        with console.status("starting a stack for the chaos run"):
            stack.start()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"chaos, seed {seed}", total=payments)
            result = run_chaos(stack, options, lambda: progress.advance(task))
    report.write_text(dump_json(result))
    console.print("PSP faults: " + ", ".join(f"{k} {v}" for k, v in result.psp_faults.items()))
    print_checks(console, result.checks, title=f"chaos, seed {seed}: {result.seconds:.0f} s")
    console.print(f"report written to {report}")
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option(help="Seconds, not minutes: small sizes (the suite runs this).")
    ] = False,
    out: Annotated[
        Path, typer.Option(help="Folder for results.json, results.md and chart.png.")
    ] = Path("bench-results"),
    gateway_workers: Annotated[int, typer.Option(help="Gateway (uvicorn) processes.")] = 1,
    workers: Annotated[int, typer.Option(help="Dramatiq worker processes.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per worker process.")] = 8,
    profile: Annotated[
        bool, typer.Option(help="Record py-spy profiles of the gateway and the workers.")
    ] = False,
) -> None:
    """Measure paystream on a stack of its own, each figure next to a ceiling or
    a peer measured in the same run: ingress against bare Starlette, end to end
    against a Dramatiq no-op, reconciliation against DuckDB; idempotency and
    the ledger too. Prints a table, writes JSON and a chart."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from bench.report import print_results, write
    from bench.run import BenchOptions, planned_steps, run_bench
    from bench.wrk import WrkMissing

    options = BenchOptions(
        quick=quick,
        gateway_workers=gateway_workers,
        workers=workers,
        threads=threads,
        profile=profile,
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

        try:
            results = run_bench(options, out, say, lambda info: console.log("the stack is up"))
        except WrkMissing as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        progress.update(task, completed=planned_steps(options))
    print_results(console, results)
    written = write(results, out)
    console.print("written: " + ", ".join(str(path) for path in written))


@keys_app.command("create")
def keys_create(
    merchant: Annotated[str, typer.Option(help="Merchant id; created if it does not exist.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles.")
    ] = "payments:write,payments:read",
    name: Annotated[str | None, typer.Option(help="Merchant name, when creating it.")] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Create a merchant's API key. The key is printed once; only its HMAC is
    stored. Merchant roles only: operators' keys come from `paystream operators`."""
    from store.keys import Owner, create_key
    from store.merchants import ensure_merchant

    wanted = _roles(roles, "merchant")
    conn, pepper = _key_store()
    with conn:
        ensure_merchant(conn, merchant, name or merchant)
        row, key = create_key(conn, Owner.merchant(merchant), wanted, pepper, description)
    _print_key(row, key)


def _roles(listed: str, kind: str) -> list[str]:
    """Comma-separated roles of one kind of key; exit code 2 for any other."""
    from gateway.auth import MERCHANT_ROLES, OPERATOR_ROLES

    allowed = MERCHANT_ROLES if kind == "merchant" else OPERATOR_ROLES
    wanted = [role.strip() for role in listed.split(",") if role.strip()]
    foreign = sorted(set(wanted) & (set(OPERATOR_ROLES) - set(MERCHANT_ROLES)))
    if kind == "merchant" and foreign:
        console.print(
            f"[red]{', '.join(foreign)} is an operator's role, and no merchant key holds one[/red];"
            " make an operator key instead: paystream operators create NAME --roles "
            + ",".join(foreign)
        )
        raise typer.Exit(2)
    unknown = sorted(set(wanted) - set(allowed))
    if unknown or not wanted:
        console.print(f"[red]not {kind} roles: {unknown}[/red]; choose from {', '.join(allowed)}")
        raise typer.Exit(2)
    return wanted


@keys_app.command("list")
def keys_list(merchant: Annotated[str, typer.Option(help="Merchant id.")]) -> None:
    """List a merchant's keys (never the keys themselves)."""
    from store.keys import Owner, list_keys

    conn, _ = _key_store()
    with conn:
        for row in list_keys(conn, Owner.merchant(merchant)):
            _print_key(row)


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key to replace.")],
    merchant: Annotated[str, typer.Option(help="Its merchant.")],
    grace_seconds: Annotated[int, typer.Option(help="How long the old key keeps working.")] = 0,
) -> None:
    """Make a new key with the same roles; the old one stops after the grace."""
    from datetime import timedelta

    from gateway.auth import MERCHANT_ROLES
    from store.keys import Owner, create_key, list_keys, revoke_key

    owner = Owner.merchant(merchant)
    conn, pepper = _key_store()
    with conn:
        old = next((k for k in list_keys(conn, owner) if k.id == key_id), None)
        if old is None or revoke_key(conn, owner, key_id, timedelta(seconds=grace_seconds)) is None:
            console.print(f"[red]no active key {key_id} for {merchant}[/red]")
            raise typer.Exit(1)
        roles = [role for role in old.roles if role in MERCHANT_ROLES]
        row, key = create_key(conn, owner, roles, pepper, old.description)
    _print_key(row, key)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key to revoke.")],
    merchant: Annotated[str, typer.Option(help="Its merchant.")],
) -> None:
    """Revoke a key: it stops working at once."""
    from store.keys import Owner, revoke_key

    conn, _ = _key_store()
    with conn:
        row = revoke_key(conn, Owner.merchant(merchant), key_id)
    if row is None:
        console.print(f"[red]no active key {key_id} for {merchant}[/red]")
        raise typer.Exit(1)
    _print_key(row)


@operators_app.command("create")
def operators_create(
    name: Annotated[str, typer.Argument(help="Who the operator is, e.g. a person or a team.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles of its first key: reconciliation, admin.")
    ] = "reconciliation",
) -> None:
    """Create a platform operator and its first key, printed once. Operators
    reconcile the PSP's reports (which cover every merchant) and, with
    `admin`, manage operators over the API."""
    from store.operators import create_operator

    wanted = _roles(roles, "operator")
    conn, pepper = _key_store()
    with conn:
        operator, row, key = create_operator(conn, name, wanted, pepper)
    print(json.dumps({"operatorId": operator.id, "name": operator.name, **_key_json(row, key)}))


@operators_app.command("list")
def operators_list() -> None:
    """List operators, one a line, with their keys (never the keys themselves)."""
    from store.operators import list_operator_keys, list_operators

    conn, _ = _key_store()
    with conn:
        operators, keys = list_operators(conn), list_operator_keys(conn)
    for operator in operators:
        owned = [_key_json(row) for row in keys if row.operator_id == operator.id]
        print(json.dumps({"operatorId": operator.id, "name": operator.name, "keys": owned}))


@operators_app.command("revoke")
def operators_revoke(key_id: Annotated[str, typer.Argument(help="The key to revoke.")]) -> None:
    """Revoke an operator's key: it stops working at once."""
    from store.keys import Owner, revoke_key
    from store.operators import get_operator_key

    conn, _ = _key_store()
    with conn:
        found = get_operator_key(conn, key_id)
        row = (
            revoke_key(conn, Owner.operator(found.operator_id), key_id)
            if found and found.operator_id
            else None
        )
    if row is None:
        console.print(f"[red]no active operator key {key_id}[/red]")
        raise typer.Exit(1)
    _print_key(row)
