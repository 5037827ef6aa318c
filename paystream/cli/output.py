"""Where the command line talks to people: standard error, through rich
(standard output is kept for what scripts read, such as a new key's JSON)."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True)
