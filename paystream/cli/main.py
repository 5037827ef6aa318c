"""The `paystream` command. The product's own commands are declared here; the
tooling (the local stack, drills and chaos, benchmarks) adds its commands
through the `paystream.commands` entry points, so the root never imports the
tooling that runs it."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from paystream import __version__
from paystream.cli import books
from paystream.cli import keys
from paystream.cli import processes

app = typer.Typer(
    name="paystream",
    help="paystream: a payment gateway that never charges twice and proves its books.",
    no_args_is_help=True,
    add_completion=False,
    # Help is markdown: a docstring's paragraphs are joined into lines the
    # terminal wraps, not shown as the source wraps them. The first sentence
    # is what a command's listing shows.
    rich_markup_mode="markdown",
)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


app.command()(processes.migrate)
app.command()(processes.gateway)
app.command()(processes.worker)
app.command()(processes.janitor)
app.command()(processes.relay)
app.command()(processes.webhooks)
app.command("psp-simulator")(processes.psp_simulator)
app.command()(books.reconcile)
app.add_typer(books.ledger_app, name="ledger")
app.add_typer(books.audit_app, name="audit")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(keys.operators_app, name="operators")
for command in entry_points(group="paystream.commands"):
    app.command(command.name)(command.load())
