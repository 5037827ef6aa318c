"""Who runs Postgres when paystream runs as root, since Postgres refuses to.

The owner of an existing cluster keeps it; a new cluster goes to the
`postgres` user where the machine's packages made one, else to a system user
`paystream` made here (`useradd --system`, no home, no login shell). That
user must reach both the cluster and the binaries: binaries it cannot reach
(a checkout under /root, say) are copied once under /var/lib/paystream."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

DEBIAN_USER = "postgres"
OWN_USER = "paystream"
OUTSIDE = Path("/var/lib/paystream")


def running_as_root() -> bool:
    return os.geteuid() == 0


def service_user(cluster: Path) -> str:
    """The user that runs the cluster in `cluster` (made or to be made)."""
    if (cluster / "PG_VERSION").exists():
        owner = pwd.getpwuid(cluster.stat().st_uid).pw_name
        if owner != "root":
            return owner
    if _exists(DEBIAN_USER):
        return DEBIAN_USER
    ensure_user(OWN_USER)
    return OWN_USER


def ensure_user(name: str) -> pwd.struct_passwd:
    """A system user `name`, made unless it exists. Launchers making it at the
    same time take turns under a lock (two useradd at once can both write
    /etc/passwd, the second over the first); the later finds it made."""
    OUTSIDE.mkdir(parents=True, exist_ok=True)
    with (OUTSIDE / ".users.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _exists(name):
            made = subprocess.run(
                [
                    _system_program("useradd"),
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if made.returncode != 0:
                raise RuntimeError(f"could not make the user {name} to run Postgres: {made.stderr}")
    return pwd.getpwnam(name)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def as_user(user: str, argv: list[str]) -> list[str]:
    return [_system_program("runuser"), "-u", user, "--", *argv]


def _system_program(name: str) -> str:
    """A program of the system's administrator, found even where PATH lacks
    the sbin folders (a root shell reached with `su` or a bare `env -i`)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path) or name


def reaches(user: str, path: Path) -> bool:
    """Whether `user` can get into the folder `path`."""
    return subprocess.run(as_user(user, ["test", "-x", str(path)]), check=False).returncode == 0


def runnable_bindir(bindir: Path, user: str) -> Path:
    """`bindir`, or a copy of its installation that `user` can run."""
    if reaches(user, bindir):
        return bindir
    install = bindir.parent
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:16]
    copy = OUTSIDE / "postgres" / digest
    if not (copy / "bin" / "postgres").exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        # Copied aside, then renamed into place: a launcher never runs half a copy.
        staging = Path(tempfile.mkdtemp(dir=copy.parent))
        shutil.copytree(install, staging / "install", symlinks=True)
        with contextlib.suppress(OSError):  # another launcher put the same copy there first
            (staging / "install").rename(copy)
        shutil.rmtree(staging, ignore_errors=True)
    return copy / bindir.name
