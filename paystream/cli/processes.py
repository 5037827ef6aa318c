"""The product's processes: migrate, and serve the gateway, the workers, the
janitor, the relay, the webhook sender and the PSP simulator."""

from __future__ import annotations

import os
import sys

from paystream.bootstrap import run_janitor
from paystream.bootstrap import run_relay
from paystream.bootstrap import run_webhook_delivery
from paystream.bootstrap import simulator_app
from paystream.cli.options import GatewayWorkers
from paystream.cli.options import Host
from paystream.cli.options import Port
from paystream.cli.options import StackDir
from paystream.cli.options import Threads
from paystream.cli.options import Workers
from paystream.cli.options import talk_to_stack
from paystream.cli.output import console
from paystream.connectors import configured_routing
from paystream.local_stack import DEFAULT_DATA_DIR
from paystream.serving import serve
from paystream.settings import Settings
from paystream.settings import settings
from store.migrate import migrate as apply_migrations
from telemetry.logs import configure_logging


def _logged() -> Settings:
    """The settings, once logging is configured from them."""
    configure_logging(settings().log_level, settings().log_format)
    return settings()


def migrate(data_dir: StackDir = DEFAULT_DATA_DIR) -> None:
    """Apply the database migrations (DATABASE_URL)."""
    talk_to_stack(data_dir)
    applied = apply_migrations(settings().database_url)
    console.print(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


def gateway(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: GatewayWorkers = 1,
) -> None:
    """Serve the merchant API (uvicorn, uvloop, httptools)."""
    # A routing table naming a PSP not run here is refused now, not at a payment.
    configured_routing(settings())
    serve(
        "paystream.asgi:gateway",
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=settings().tls_cert_file,
        ssl_keyfile=settings().tls_key_file,
    )


def worker(
    processes: Workers = 2,
    threads: Threads = 8,
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


def janitor() -> None:
    """Re-drive stalled PSP operations from Postgres; flag what stays unresolved."""
    run_janitor(_logged())


def relay() -> None:
    """Publish outbox events to the Redis Stream `events` (at least once)."""
    run_relay(_logged())


def webhooks() -> None:
    """Deliver events to merchant webhook endpoints (consumer group on `events`)."""
    run_webhook_delivery(_logged())


def psp_simulator(host: Host = "127.0.0.1", port: Port = 8001) -> None:
    """Run the PSP simulator (a bank with fault knobs).

    Its fault knobs at start are the `PAYSTREAM_SIM_*` settings; `PATCH
    /_admin/faults` changes them while it runs."""
    _logged()
    serve(
        simulator_app(settings()),
        host=host,
        port=port,
        ssl_certfile=settings().tls_cert_file,
        ssl_keyfile=settings().tls_key_file,
        graceful_seconds=5,
    )
