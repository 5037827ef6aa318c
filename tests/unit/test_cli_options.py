"""Options declared once, on a dataclass: a command taking it has one option
per declared field (a group's among them), each defaulting as the dataclass
does, and gets the dataclass back with what was given."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from typer.testing import CliRunner

from paystream.cli import app
from paystream.cli.options import Workers
from paystream.cli.options import option
from paystream.cli.options import option_group
from paystream.cli.options import taking_options


@dataclass(frozen=True)
class Knobs:
    rate: float = option(0.1, "A share.")
    hold_ms: int = 20  # not an option: always its default


@dataclass(frozen=True)
class Run:
    payments: int = option(500, "How many.")
    workers: int = option(2, Workers)
    knobs: Knobs = option_group(Knobs())
    label: str = "drill"  # not an option either


def runs_with(*args: str) -> tuple[Run, str]:
    """What the command was given, after a parameter of its own."""
    seen: list[tuple[Run, str]] = []
    command = typer.Typer()

    @command.command()
    @taking_options
    def go(options: Run, out: str = "report.json") -> None:
        seen.append((options, out))

    result = CliRunner().invoke(command, list(args))
    assert result.exit_code == 0, result.output
    return seen[0]


def test_a_command_taking_options_gets_the_dataclasss_defaults_when_given_nothing() -> None:
    assert runs_with() == (Run(), "report.json")


def test_given_options_reach_their_fields_and_their_groups_fields() -> None:
    options, out = runs_with("--payments", "7", "--workers", "3", "--rate", "0.25", "--out", "x")
    assert options == Run(payments=7, workers=3, knobs=Knobs(rate=0.25))
    assert out == "x"


def test_a_field_declared_without_option_is_not_an_option() -> None:
    command = typer.Typer()

    @command.command()
    @taking_options
    def go(options: Run) -> None:
        raise AssertionError("not run")

    refused = CliRunner().invoke(command, ["--hold-ms", "5"])
    assert refused.exit_code == 2 and "No such option" in refused.output


def test_the_drill_and_chaos_commands_show_their_options_with_their_help() -> None:
    runner = CliRunner()
    drill = runner.invoke(app, ["drill", "--help"], env={"COLUMNS": "400"})
    chaos = runner.invoke(app, ["chaos", "--help"], env={"COLUMNS": "400"})
    assert "--timeout-rate" in drill.output and "Share of PSP calls that time out." in drill.output
    assert "--settle-timeout" not in drill.output
    assert "--psp" in chaos.output and "--seed" in chaos.output
    assert "--timeout-rate" not in chaos.output and "--endpoint-failures" not in chaos.output
