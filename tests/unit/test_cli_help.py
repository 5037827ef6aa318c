"""The command line's help reads well: each command says what it does in one
sentence, and its own --help shows every paragraph whole, never broken
mid-sentence where the source happens to wrap."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from paystream.cli import app

# Wide enough that no paragraph has to wrap: a break left is the help's own.
WIDE = {"COLUMNS": "400"}


def every_command(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under a group (typer's own click), with its path of names."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if is_group(command):
            yield from every_command(command, (*path, name))


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


COMMANDS = dict(every_command(typer.main.get_command(app)))
GROUPS = [(), *(path for path, command in COMMANDS.items() if is_group(command))]


def paragraphs(command: Any) -> list[str]:
    """The help's paragraphs as one line each, as markdown shows them."""
    text = inspect.cleandoc(command.help or "").replace("`", "")
    return [" ".join(paragraph.split()) for paragraph in text.split("\n\n")]


def rendered_lines(*args: str) -> list[str]:
    result = CliRunner().invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return [" ".join(line.strip(" │").split()) for line in result.output.splitlines()]


def test_the_tooling_commands_are_there_too() -> None:
    assert {("up",), ("drill",), ("chaos",), ("bench",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_says_what_it_does_in_one_sentence(path: tuple[str, ...]) -> None:
    first = paragraphs(COMMANDS[path])[0]
    assert first.endswith("."), first
    assert re.findall(r"[.!?](?=\s)", first) == [], f"more than one sentence: {first}"


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_paragraph_of_a_commands_help_is_shown_whole(path: tuple[str, ...]) -> None:
    lines = rendered_lines(*path)
    for paragraph in paragraphs(COMMANDS[path]):
        assert any(paragraph in line for line in lines), f"broken: {paragraph!r}\n" + "\n".join(
            lines
        )


@pytest.mark.parametrize("group", GROUPS, ids=" ".join)
def test_a_groups_listing_shows_each_commands_sentence_on_its_line(group: tuple[str, ...]) -> None:
    lines = rendered_lines(*group)
    children = [(p[-1], c) for p, c in COMMANDS.items() if p[:-1] == group]
    for name, command in children:
        sentence = paragraphs(command)[0]
        assert any(line.startswith(name) and line.endswith(sentence) for line in lines), (
            f"{name}: {sentence}\n" + "\n".join(lines)
        )
