"""`paystream up`: the whole stack on one machine, with no other set-up.

Postgres and Redis are started as real servers with their data in the data
folder (unless DATABASE_URL / REDIS_URL name servers to use), migrations are
applied, a demo merchant and key and a local operator and key are made, the
PSPs asked for are started (`stack.psps`) with a routing table among them,
and the paystream processes are started. Everything is written to
`<data-dir>/stack.json` for scripts.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg
import redis

from gateway.auth import MERCHANT_ROLES
from gateway.auth import OPERATOR_ROLES
from payments.routing import RoutingTable
from paystream.local_stack import write_stack_settings
from stack import secrets as stack_secrets
from stack.description import StackInfo
from stack.description import StackOptions
from stack.ports import answers
from stack.ports import port_is_free
from stack.ports import wait_until
from stack.postgres import PostgresServer
from stack.postgres import cluster_folder
from stack.postgres_binaries import describe
from stack.postgres_binaries import postgres_bindir
from stack.processes import ManagedProcess
from stack.psps import LocalPsp
from stack.psps import Surroundings
from stack.psps import check_runnable
from stack.psps import local_psps
from stack.psps import stack_routing
from stack.redis import RedisServer
from stack.tls import local_tls
from store.keys import Owner
from store.keys import create_key
from store.keys import key_is_active
from store.merchants import ensure_merchant
from store.migrate import migrate
from store.operators import create_operator
from telemetry.metrics import MULTIPROCESS_DIR

DEMO_MERCHANT = "mer_demo"


class Stack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.logs = self.data_dir / "logs"
        self.metrics_dir = self.data_dir / "metrics"
        self.postgres: PostgresServer | None = None
        # Which Postgres binaries it runs, for people; None with DATABASE_URL.
        self.postgres_binaries: str | None = None
        self.redis: RedisServer | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self.info: StackInfo | None = None
        self._env: dict[str, str] = {}
        # Refused now, before anything starts: a PSP that cannot run here, or
        # a table naming a PSP not run here.
        check_runnable(options.psps)
        self.routing: RoutingTable = stack_routing(options.psps, options.routing_file)
        self.tls = local_tls(self.data_dir / "tls") if options.tls else None
        self.scheme = "https" if options.tls else "http"
        self.gateway_url = f"{self.scheme}://127.0.0.1:{options.port}"
        self.psps: dict[str, LocalPsp] = {}

    # --- start -------------------------------------------------------------

    def start(self, progress: Any = None) -> StackInfo:
        say = progress or (lambda message: None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "stack.json").unlink(missing_ok=True)
        secrets = stack_secrets.load_or_create(self.data_dir)
        self.psps = local_psps(self.options.psps, self._surroundings(secrets))
        self._check_ports()
        try:
            database_url = self._start_postgres(secrets, say)
            redis_url = self._start_redis(secrets, say)
            say("applying migrations")
            migrate(database_url)
            api_key = self._demo_key(database_url, secrets["key_pepper"].encode())
            operator_key = self._operator_key(database_url, secrets["key_pepper"].encode())
            self._env = self._process_env(database_url, redis_url, secrets)
            # What the commands run beside the stack (`paystream keys`, …) talk to it with.
            write_stack_settings(
                self.data_dir, {k: v for k, v in self._env.items() if k != MULTIPROCESS_DIR}
            )
            # The metrics of the processes of a previous run are not this run's.
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir.mkdir()
            self._start_processes(self._env, say)
        except BaseException:
            self.stop()
            raise
        self.info = StackInfo(
            gateway_url=self.gateway_url,
            psps={name: psp.url for name, psp in self.psps.items()},
            routing=self.routing.document(),
            api_key=api_key,
            operator_key=operator_key,
            database_url=database_url,
            redis_url=redis_url,
            data_dir=str(self.data_dir),
            ca_file=str(self.tls.ca) if self.tls else None,
            psp_info={key: value for psp in self.psps.values() for key, value in psp.info.items()},
        )
        path = self.data_dir / "stack.json"
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.info.to_json(), handle, indent=2)
        path.with_suffix(".tmp").rename(path)
        return self.info

    def _surroundings(self, secrets: dict[str, str]) -> Surroundings:
        return Surroundings(
            data_dir=self.data_dir,
            scheme=self.scheme,
            gateway_url=self.gateway_url,
            secrets=secrets,
            tls=self.tls,
            ports={
                "--simulator-port": self.options.simulator_port,
                "--stripe-port": self.options.stripe_port,
            },
        )

    def _check_ports(self) -> None:
        wanted = {"--port": self.options.port}
        for psp in self.psps.values():
            wanted.update(psp.ports)
        if self.options.database_url is None:
            wanted["--pg-port"] = self.options.pg_port
        if self.options.redis_url is None:
            wanted["--redis-port"] = self.options.redis_port
        busy = [f"{flag} {port}" for flag, port in wanted.items() if not port_is_free(port)]
        if busy:
            raise SystemExit(
                f"port(s) in use: {', '.join(busy)}. Is another stack running? "
                "Stop it, or choose other ports with these flags."
            )

    def _start_postgres(self, secrets: dict[str, str], say: Any) -> str:
        if self.options.database_url:
            say("using the Postgres at DATABASE_URL")
            return self.options.database_url
        cluster = cluster_folder(self.data_dir)
        bindir = postgres_bindir(self.options.postgres_bin, cluster)
        self.postgres_binaries = describe(bindir)
        self.postgres = PostgresServer(
            data_dir=cluster,
            port=self.options.pg_port,
            password=secrets["postgres_password"],
            log_path=self.logs / "postgres.log",
            options=self.options.postgres_options,
            bindir=bindir,
        )
        if self.postgres.initialize():
            say(f"created a Postgres cluster in {self.postgres.data_dir}")
        say(f"starting {self.postgres_binaries} on 127.0.0.1:{self.options.pg_port}")
        self.postgres.start()
        self.postgres.ensure_database("paystream")
        return self.postgres.url("paystream")

    def _start_redis(self, secrets: dict[str, str], say: Any) -> str:
        if self.options.redis_url:
            say("using the Redis at REDIS_URL")
            return self.options.redis_url
        say(f"starting Redis on 127.0.0.1:{self.options.redis_port}")
        self.redis = RedisServer(
            data_dir=self.data_dir / "redis",
            port=self.options.redis_port,
            password=secrets["redis_password"],
            log_path=self.logs / "redis.log",
        )
        self.redis.start()
        return self.redis.url(0)

    def _demo_key(self, database_url: str, pepper: bytes) -> str:
        """The demo merchant's key, with every merchant role."""

        def make(conn: psycopg.Connection[Any]) -> str:
            ensure_merchant(conn, DEMO_MERCHANT, "Demo merchant")
            return create_key(conn, Owner.merchant(DEMO_MERCHANT), list(MERCHANT_ROLES), pepper)[1]

        return self._kept_key(database_url, pepper, "demo-api-key", make)

    def _operator_key(self, database_url: str, pepper: bytes) -> str:
        """A local operator's key, with every operator role: reconciliation is theirs."""

        def make(conn: psycopg.Connection[Any]) -> str:
            return create_operator(conn, "Local operator", list(OPERATOR_ROLES), pepper)[2]

        return self._kept_key(database_url, pepper, "operator-api-key", make)

    def _kept_key(
        self,
        database_url: str,
        pepper: bytes,
        name: str,
        make: Callable[[psycopg.Connection[Any]], str],
    ) -> str:
        """The key kept in `name` from the last `up` if still active, else a new one."""
        key_file = self.data_dir / name
        with psycopg.connect(database_url, autocommit=True) as conn:
            if key_file.exists():
                key = key_file.read_text().strip()
                if key_is_active(conn, key, pepper):
                    return key
            with conn.transaction():
                key = make(conn)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key

    def _process_env(
        self, database_url: str, redis_url: str, secrets: dict[str, str]
    ) -> dict[str, str]:
        return {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PAYSTREAM_KEY_PEPPER": secrets["key_pepper"],
            "PAYSTREAM_PSP_API_KEY": secrets["psp_api_key"],
            # The PSPs it runs, and which takes each new payment.
            "PAYSTREAM_PSPS": ",".join(self.psps),
            "PAYSTREAM_ROUTING": json.dumps(self.routing.document()),
            **{key: value for psp in self.psps.values() for key, value in psp.env.items()},
            # A local stack delivers merchant webhooks to local receivers.
            "PAYSTREAM_WEBHOOKS_ALLOW_PRIVATE": "true",
            # Every process records its metrics here; the gateway serves the sum.
            MULTIPROCESS_DIR: str(self.metrics_dir),
            # Lines for people in <data-dir>/logs, unless JSON was asked for.
            "PAYSTREAM_LOG_FORMAT": os.environ.get("PAYSTREAM_LOG_FORMAT", "console"),
            **self._tls_env(),
            **self.options.env,
        }

    def _tls_env(self) -> dict[str, str]:
        if self.tls is None:
            return {}
        return {
            "PAYSTREAM_TLS_CERT_FILE": str(self.tls.certificate),
            "PAYSTREAM_TLS_KEY_FILE": str(self.tls.key),
        }

    def process_specs(self, env: dict[str, str]) -> list[ManagedProcess]:
        """Every process of the stack: the PSPs' first, then paystream's, as
        the Procfile lists them."""
        me = [sys.executable, "-m", "paystream"]
        o = self.options

        def spec(name: str, *args: str) -> ManagedProcess:
            return ManagedProcess(name, [*me, *args], self.logs / f"{name}.log", env=env)

        return [
            *(
                ManagedProcess(
                    name, argv, self.logs / f"{name}.log", env={**env, **psp.process_env}
                )
                for psp in self.psps.values()
                for name, argv in psp.processes
            ),
            spec("worker", "worker", "--processes", str(o.workers), "--threads", str(o.threads)),
            spec("janitor", "janitor"),
            spec("relay", "relay"),
            spec("webhooks", "webhooks"),
            spec("gateway", "gateway", "--port", str(o.port), "--workers", str(o.gateway_workers)),
        ]

    def _start_processes(self, env: dict[str, str], say: Any) -> None:
        started_at = time.time()
        for process in self.process_specs(env):
            say(f"starting {process.name}")
            process.start()
            self.processes[process.name] = process
        for name, psp in self.psps.items():
            if psp.health_url:
                self._wait_http(psp.health_url, name)
            if psp.ready:
                psp.ready()
        self._wait_http(f"{self.gateway_url}/readyz", "gateway")
        self._wait_workers(env["REDIS_URL"], started_at)

    def _wait_http(self, url: str, name: str) -> None:
        verify = ssl.create_default_context(cafile=self.tls.ca) if self.tls else True

        def ready() -> bool:
            self._raise_if_exited()
            return answers(url, verify=verify) == 200

        wait_until(ready, timeout=60, what=name)

    def _wait_workers(self, redis_url: str, started_at: float) -> None:
        """Workers are ready once they poll their queues: each poll refreshes
        their heartbeat in Dramatiq's heartbeat set."""

        def polling() -> bool:
            self._raise_if_exited()
            with redis.Redis.from_url(redis_url) as client:
                beats = client.zrangebyscore("dramatiq:__heartbeats__", started_at * 1000, "+inf")
            return len(beats) >= self.options.workers

        wait_until(polling, timeout=60, what="workers")

    def _raise_if_exited(self) -> None:
        for process in self.processes.values():
            if not process.running():
                raise RuntimeError(
                    f"{process.name} exited with code {process.exit_code()}:\n{process.log_tail()}"
                )

    # --- run and stop -----------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The settings every process of the stack runs with (for tools run beside it)."""
        return dict(self._env)

    def restart(self, name: str) -> None:
        """Start a process of the stack again (after a crash, or a kill on purpose)."""
        self.processes[name].stop()
        [spec] = [p for p in self.process_specs(self._env) if p.name == name]
        spec.start()
        self.processes[name] = spec

    def restart_redis(self) -> None:
        """Stop the stack's Redis and start it again: everything in it is gone."""
        assert self.redis is not None, "this stack uses a Redis of its own"
        self.redis.stop()
        self.redis.start()

    def exited(self) -> list[ManagedProcess]:
        return [p for p in self.processes.values() if not p.running()]

    def stop(self) -> None:
        """Stop in the reverse order of start: ingress first, servers last."""
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.processes.clear()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
