"""The settings of a local stack, for the commands that talk to one.

`paystream up` writes the settings its processes run with to
`<data-dir>/settings.json` (mode 600). A command run beside it (`keys`,
`operators`, `reconcile`, `ledger verify`, `audit verify`, `migrate`) takes
them when the environment names no database, so it needs no environment of
its own; whatever the environment does set still wins, as in production."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from paystream.settings import settings

DEFAULT_DATA_DIR = Path(".paystream")
SETTINGS_FILE = "settings.json"
# Any of these in the environment names the servers: the data folder is not read.
_SERVER_VARIABLES = ("DATABASE_URL", "PAYSTREAM_DATABASE_URL", "DATABASE_URL_FILE")


class NoStack(RuntimeError):
    pass


def write_stack_settings(data_dir: Path, env: dict[str, str]) -> None:
    """Keep the settings of the stack in `data_dir` for the commands run beside it."""
    path = data_dir / SETTINGS_FILE
    staged = path.with_suffix(".tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(env, handle, indent=2)
    staged.rename(path)


def use_stack(data_dir: Path) -> str:
    """Point this process's settings at the stack the environment names, or
    else at the local stack in `data_dir`; which one, in a line for people."""
    named = next((name for name in _SERVER_VARIABLES if os.environ.get(name)), None)
    if named is None:
        path = data_dir / SETTINGS_FILE
        try:
            local = json.loads(path.read_text())
        except FileNotFoundError:
            raise NoStack(
                f"no stack to talk to: the environment names no database (DATABASE_URL) and"
                f" {data_dir.absolute()} holds no stack's settings ({SETTINGS_FILE}). Start one"
                f" with `paystream up` (or name its folder with --data-dir), or set"
                f" DATABASE_URL and PAYSTREAM_KEY_PEPPER to talk to a deployment."
            ) from None
        for name, value in local.items():
            os.environ.setdefault(name, value)
        settings.cache_clear()
        where = f"the local stack in {data_dir.absolute()}"
    else:
        settings.cache_clear()
        where = named
    return f"paystream: talking to {where} (postgres {_server(settings().database_url)})"


def _server(url: str) -> str:
    """Where a database URL points, without its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"
