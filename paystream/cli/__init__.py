"""The `paystream` command line. Its `app` is built in `paystream.cli.main`
when first asked for, so that importing a module of it (`options`, which the
tooling's options dataclasses use) does not load every command."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from paystream.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
