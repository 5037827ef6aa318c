"""A real PostgreSQL server from this machine's own binaries, with its data in
a folder of ours. Postgres refuses to run as root, so as root it runs as the
`postgres` user through `runuser`, on a folder that user owns."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from stack.ports import wait_until
from stack.processes import ManagedProcess

_SERVICE_USER = "postgres"
SUPERUSER = "paystream"


class PostgresNotFound(RuntimeError):
    pass


def find_bindir() -> Path:
    """Where initdb and postgres live: `pg_config --bindir`, else the newest
    Debian-style install under /usr/lib/postgresql."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir and (Path(bindir) / "initdb").exists():
            return Path(bindir)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresNotFound(
        "no PostgreSQL server binaries found (initdb, postgres). Install them "
        "(Debian: apt-get install postgresql) or point DATABASE_URL at a running server."
    )


def _major_version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _running_as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    password: str
    log_path: Path
    # Extra `-c name=value` settings (the tests turn durability off for speed).
    options: dict[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)
    process: ManagedProcess | None = None

    def url(self, database: str = "paystream") -> str:
        password = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def _as_service_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", _SERVICE_USER, "--", *argv] if _running_as_root() else argv

    def initialize(self) -> bool:
        """Create the cluster unless it exists; True when it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.data_dir.parent / ".initdb-password"
        password_file.write_text(self.password)
        if _running_as_root():
            user = pwd.getpwnam(_SERVICE_USER)
            for path in (self.data_dir, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.data_dir, 0o700)
        os.chmod(password_file, 0o600)
        try:
            result = subprocess.run(
                self._as_service_user(
                    [
                        str(self.bindir / "initdb"),
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
        argv = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
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
    unless, as root, the postgres user cannot reach it (a checkout under
    /root, say). Then the cluster lives under /var/lib/paystream and
    `data_dir/postgres` is a link to it, so it is still found there."""
    inside = data_dir / "postgres"
    if not _running_as_root() or inside.is_symlink() or _service_user_reaches(data_dir):
        return inside.resolve() if inside.is_symlink() else inside
    outside = (
        Path("/var/lib/paystream/clusters")
        / hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    )
    outside.mkdir(parents=True, exist_ok=True)
    inside.symlink_to(outside, target_is_directory=True)
    return outside


def _service_user_reaches(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["runuser", "-u", _SERVICE_USER, "--", "test", "-x", str(folder)], check=False
    )
    return probe.returncode == 0
