"""The one walk every decoded JSON body gets: card numbers, NUL characters and
depth, named by JSON pointer, never echoed."""

from typing import Any

import pytest

from gateway.http import MAX_JSON_DEPTH
from gateway.http import refuse_forbidden_content
from gateway.problems import Problem

PAN = "4111111111111111"


def refusal(document: Any) -> Problem:
    with pytest.raises(Problem) as refused:
        refuse_forbidden_content(document)
    return refused.value


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ({"metadata": {"note": PAN}}, "/metadata/note"),
        ({"items": [1, {"n": int(PAN)}]}, "/items/1/n"),
        ({"amount": 4.111111111111111e15}, "/amount"),
        ({"metadata": {"a/b": {"c~d": [PAN]}}}, "/metadata/a~1b/c~0d/0"),
        ({"metadata": {"4111/1111/1111/1111": "in a key"}}, "/metadata/[REDACTED PAN]"),
        (PAN, "/"),
    ],
)
def test_a_card_number_is_located_by_pointer_and_never_echoed(document: Any, pointer: str) -> None:
    problem = refusal(document)
    assert problem.code == "raw_card_data_forbidden"
    assert problem.detail.startswith(f"the value at {pointer} looks like a card number")


def test_the_first_thing_refused_is_the_first_in_document_order() -> None:
    problem = refusal({"a": "x\x00y", "b": PAN})
    assert (problem.code, problem.extra["errors"][0]["pointer"]) == ("validation_error", "/a")
    assert refusal({"a": PAN, "b": "x\x00y"}).code == "raw_card_data_forbidden"


def test_a_document_nested_to_the_limit_passes_and_one_level_more_is_refused() -> None:
    nested: Any = "x"
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    refuse_forbidden_content(nested)
    problem = refusal([nested])
    assert (problem.code, problem.detail) == (
        "validation_error",
        "the body nests deeper than 32 levels",
    )
    assert problem.extra["errors"][0]["pointer"] == "/0" * MAX_JSON_DEPTH


def test_a_document_a_hundred_thousand_levels_deep_is_refused_without_recursion() -> None:
    nested: Any = {}
    for _ in range(100_000):
        nested = {"a": nested}
    assert refusal(nested).detail == "the body nests deeper than 32 levels"


def test_a_clean_document_passes() -> None:
    refuse_forbidden_content(
        {"orderId": "order-2026-11-29", "amount": 1999, "ok": True, "none": None, "list": [1.5]}
    )
