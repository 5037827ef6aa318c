"""A real PostgreSQL server, with its data in a folder of ours, from the
binaries `stack.postgres_binaries` chooses. Postgres refuses to run as root,
so as root it runs as a service user (`stack.service_user`) through
`runuser`, on a folder that user owns."""

from __future__ import annotations

import hashlib
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import quote

import psycopg

from paystream.settings import settings
from stack.ports import wait_until
from stack.postgres_binaries import check_cluster
from stack.postgres_binaries import postgres_bindir
from stack.processes import ManagedProcess
from stack.service_user import OUTSIDE
from stack.service_user import as_user
from stack.service_user import reaches
from stack.service_user import runnable_bindir
from stack.service_user import running_as_root
from stack.service_user import service_user

SUPERUSER = "paystream"


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    password: str
    log_path: Path
    # Extra `-c name=value` settings (the tests turn durability off for speed).
    options: dict[str, str] = field(default_factory=dict)
    # initdb's and postgres's folder; by default as PAYSTREAM_POSTGRES_BIN says.
    bindir: Path | None = None
    process: ManagedProcess | None = None
    # Who runs it, as root; None: whoever we are.
    user: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        bindir = self.bindir or postgres_bindir(settings().postgres_bin, self.data_dir)
        check_cluster(bindir, self.data_dir)
        if running_as_root():
            self.user = service_user(self.data_dir)
            bindir = runnable_bindir(bindir, self.user)
        self.bindir = bindir

    @property
    def binaries(self) -> Path:
        assert self.bindir is not None
        return self.bindir

    def url(self, database: str = "paystream") -> str:
        password = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def _as_service_user(self, argv: list[str]) -> list[str]:
        return as_user(self.user, argv) if self.user else argv

    def initialize(self) -> bool:
        """Create the cluster unless it exists; True when it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.data_dir.parent / ".initdb-password"
        password_file.write_text(self.password)
        if self.user:
            user = pwd.getpwnam(self.user)
            for path in (self.data_dir, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.data_dir, 0o700)
        os.chmod(password_file, 0o600)
        try:
            result = subprocess.run(
                self._as_service_user(
                    [
                        str(self.binaries / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        SUPERUSER,
                        f"--pwfile={password_file}",
                        "--auth-host=scram-sha-256",
                        "--auth-local=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        return True

    def start(self, timeout: float = 60.0) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # TCP only: a socket path under a deep data folder can exceed the
            # 107-byte limit of Unix socket names.
            "unix_socket_directories": "",
            "max_connections": "200",
            **self.options,
        }
        argv = [str(self.binaries / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        # Stopped by SIGINT to the postmaster itself (fast shutdown), below.
        self.process = ManagedProcess("postgres", self._as_service_user(argv), self.log_path)
        self.process.start()
        wait_until(self._ready, timeout=timeout, what="PostgreSQL")

    def _ready(self) -> bool:
        if self.process is not None and not self.process.running():
            raise RuntimeError(f"PostgreSQL exited:\n{self.process.log_tail()}")
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"'.encode())

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Fast shutdown: roll back open transactions, checkpoint, exit."""
        if self.process is None:
            return
        pid = self.postmaster_pid()
        if pid is not None and self.process.running():
            try:
                os.kill(pid, signal.SIGINT)
                self.process.popen.wait(60)  # type: ignore[union-attr]
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.process.stop()


def cluster_folder(data_dir: Path) -> Path:
    """Where the cluster of a stack in `data_dir` lives: `data_dir/postgres`,
    unless, as root, the service user cannot reach it (a checkout under
    /root, say). Then the cluster lives under /var/lib/paystream and
    `data_dir/postgres` is a link to it, so it is still found there."""
    inside = data_dir / "postgres"
    if inside.is_symlink():
        return inside.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not running_as_root() or reaches(service_user(inside), data_dir):
        return inside
    outside = (
        OUTSIDE / "clusters" / hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    )
    outside.mkdir(parents=True, exist_ok=True)
    inside.symlink_to(outside, target_is_directory=True)
    return outside
