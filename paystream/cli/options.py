"""The options that more than one command takes, each written once: the
product's commands and the tooling's (`paystream up`, `drill`, `chaos`,
`bench`) use these types, and each command keeps its own default. The
commands that talk to a stack take `StackDir` and call `talk_to_stack` first.

A command whose options are a dataclass (a drill's, a benchmark's) declares
them there, each field with `option` (or a group of them with
`option_group`), takes the dataclass as one parameter and is wrapped in
`taking_options`: the fields are its options, gathered back into the
dataclass before it runs."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import field
from dataclasses import fields
from dataclasses import is_dataclass
from dataclasses import replace
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import TypeVar
from typing import get_args
from typing import get_type_hints

import typer

from paystream.cli.output import console
from paystream.local_stack import NoStack
from paystream.local_stack import use_stack

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]
Workers = Annotated[int, typer.Option(help="Dramatiq worker processes.")]
Threads = Annotated[int, typer.Option(help="Threads per worker process.")]
GatewayWorkers = Annotated[int, typer.Option(help="Gateway (uvicorn) processes.")]
Payments = Annotated[int, typer.Option(help="How many payments.")]
Concurrency = Annotated[int, typer.Option(help="Payments in flight at once.")]
Report = Annotated[Path, typer.Option(help="Where to write the JSON report.")]
StackDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="The local stack to talk to when DATABASE_URL is not set (`paystream up` wrote it).",
    ),
]


def talk_to_stack(data_dir: Path) -> None:
    """Settle which stack this command talks to, and say it on standard error;
    exit code 2, saying how to name one, when there is none."""
    try:
        print(use_stack(data_dir), file=sys.stderr)
    except NoStack as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


T = TypeVar("T")
_OPTION, _GROUP = "paystream.option", "paystream.option_group"
# `Annotated` of a type and an option known only at run time (a field's).
_annotated: Any = Annotated


def option(default: T, declared: Any) -> T:
    """A field of an options dataclass that is an option of the command taking
    it: `--<field-name>` with `declared` as its help, or declared as one of the
    types above (`Workers`)."""
    info = typer.Option(help=declared) if isinstance(declared, str) else get_args(declared)[1]
    return field(default=default, metadata={_OPTION: info})


def option_group(default: T) -> T:
    """A field of an options dataclass that is one too (a drill's PSP faults):
    its options are the command's."""
    return field(default=default, metadata={_GROUP: True})


def taking_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` as typer takes it: each parameter typed as an options dataclass
    spread into the options of its fields, each defaulting to the dataclass's
    default, and gathered back into one before `command` runs."""
    hints = get_type_hints(command, include_extras=True)
    kinds: dict[str, Any] = {name: hint for name, hint in hints.items() if is_dataclass(hint)}
    parameters: list[inspect.Parameter] = []
    for parameter in inspect.signature(command).parameters.values():
        if parameter.name in kinds:
            parameters.extend(_options(kinds[parameter.name]()))
        else:
            keyword = parameter.replace(kind=parameter.KEYWORD_ONLY)
            parameters.append(keyword.replace(annotation=hints[parameter.name]))

    @functools.wraps(command)
    def spread(**given: Any) -> None:
        gathered = {name: _gathered(kind(), given) for name, kind in kinds.items()}
        command(**given, **gathered)

    spread.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    spread.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return spread


def _options(defaults: Any) -> Iterator[inspect.Parameter]:
    """The options of an options dataclass, each defaulting to its value in `defaults`."""
    hints = get_type_hints(type(defaults))
    for each in fields(defaults):
        value = getattr(defaults, each.name)
        if _OPTION in each.metadata:
            declared = _annotated[hints[each.name], each.metadata[_OPTION]]
            yield inspect.Parameter(
                each.name, inspect.Parameter.KEYWORD_ONLY, default=value, annotation=declared
            )
        elif _GROUP in each.metadata:
            yield from _options(value)


def _gathered(defaults: Any, given: dict[str, Any]) -> Any:
    """`defaults` with the options `given` (taken out of `given`)."""
    changes = {}
    for each in fields(defaults):
        if _OPTION in each.metadata:
            changes[each.name] = given.pop(each.name)
        elif _GROUP in each.metadata:
            changes[each.name] = _gathered(getattr(defaults, each.name), given)
    return replace(defaults, **changes)
