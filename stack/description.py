"""What a local stack is asked to be (`StackOptions`, the flags of `paystream
up`) and what it turned out to be (`StackInfo`, written to stack.json)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from paystream.cli.options import GatewayWorkers
from paystream.cli.options import Threads
from paystream.cli.options import Workers
from paystream.cli.options import option
from paystream.local_stack import DEFAULT_DATA_DIR


@dataclass
class StackOptions:
    """What `paystream up` is asked for: its options are the fields made with
    `option`, the rest it settles itself."""

    data_dir: Path = option(DEFAULT_DATA_DIR, "Folder for the stack's data and logs.")
    port: int = option(8000, "Gateway port.")
    simulator_port: int = option(8001, "PSP simulator port.")
    stripe_port: int = option(
        8002, "The local Stripe's port (--psp stripe, without STRIPE_API_KEY)."
    )
    pg_port: int = option(54320, "Port of the Postgres it starts.")
    redis_port: int = option(63790, "Port of the Redis it starts.")
    workers: int = option(2, Workers)
    threads: int = option(8, Threads)
    gateway_workers: int = option(1, GatewayWorkers)
    database_url: str | None = None
    redis_url: str | None = None
    # The Postgres binaries: embedded, system or a folder (PAYSTREAM_POSTGRES_BIN).
    postgres_bin: str | None = None
    # Settings passed to every paystream process (PAYSTREAM_* variables).
    env: dict[str, str] = field(default_factory=dict)
    postgres_options: dict[str, str] = field(default_factory=dict)
    tls: bool = option(False, "HTTPS for the gateway and the simulator (a local CA).")
    # The PSPs to run here (`stack.psps`), the first the routing default.
    psps: list[str] = field(default_factory=lambda: ["simulator"])
    # A routing table (JSON, as PAYSTREAM_ROUTING); none: everything to the first PSP.
    routing_file: Path | None = None


@dataclass(frozen=True)
class StackInfo:
    gateway_url: str
    # Every PSP the stack runs, by name: where it answers.
    psps: dict[str, str]
    # The routing table, as PAYSTREAM_ROUTING takes it.
    routing: dict[str, Any]
    api_key: str
    # A platform operator's key (reconciliation, admin): what reconciles.
    operator_key: str
    database_url: str
    redis_url: str
    data_dir: str
    # The CA that signed the local certificate, with --tls.
    ca_file: str | None = None
    # What each PSP adds to stack.json (Stripe: `stripeUrl`, the Stripe in use).
    psp_info: dict[str, str] = field(default_factory=dict)

    @property
    def simulator_url(self) -> str:
        """The simulator's URL: the drill, the chaos run and the benchmarks
        run on it. LookupError for a stack without it."""
        try:
            return self.psps["simulator"]
        except KeyError:
            raise LookupError("this stack runs no PSP simulator") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "gatewayUrl": self.gateway_url,
            "consoleUrl": f"{self.gateway_url}/console",
            "simulatorUrl": self.psps.get("simulator"),
            "psps": self.psps,
            "routing": self.routing,
            "apiKey": self.api_key,
            "operatorKey": self.operator_key,
            "databaseUrl": self.database_url,
            "redisUrl": self.redis_url,
            "dataDir": self.data_dir,
            "caFile": self.ca_file,
            **self.psp_info,
        }
