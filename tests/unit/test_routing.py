"""The routing table: first matching rule, else the default; read from JSON."""

from __future__ import annotations

import json

import pytest

from payments.routing import Route
from payments.routing import RoutingTable
from payments.routing import routing_table
from payments.routing import routing_table_from_json

TABLE = RoutingTable(
    default="simulator",
    routes=(
        Route("stripe", merchant="mer_big"),
        Route("stripe", currency="EUR", min_amount=10_000),
        Route("simulator", currency="EUR"),
    ),
)


@pytest.mark.parametrize(
    ("merchant", "currency", "amount", "psp"),
    [
        ("mer_big", "USD", 1, "stripe"),  # the merchant's rule comes first
        ("mer_small", "EUR", 10_000, "stripe"),  # the bound is inclusive
        ("mer_small", "EUR", 9_999, "simulator"),
        ("mer_small", "JPY", 10_000_000, "simulator"),  # the default
    ],
)
def test_the_first_rule_that_matches_chooses_else_the_default(
    merchant: str, currency: str, amount: int, psp: str
) -> None:
    assert TABLE.choose(merchant, currency, amount) == psp


def test_a_table_reads_from_json_and_describes_itself_in_order() -> None:
    table = routing_table(
        {
            "default": "simulator",
            "routes": [{"psp": "stripe", "currency": "EUR", "minAmount": 100}],
        },
        known=["simulator", "stripe"],
    )
    assert table.choose("m", "EUR", 100) == "stripe"
    assert table.lines() == [
        ("currency EUR and amount >= 100", "stripe"),
        ("anything else", "simulator"),
    ]


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({}, "default"),
        ({"default": "simulator", "routes": [{"currency": "EUR"}]}, "needs a psp"),
        ({"default": "simulator", "routes": [{"psp": "stripe", "color": "red"}]}, "unknown fields"),
        (
            {"default": "simulator", "routes": [{"psp": "stripe", "minAmount": "10"}]},
            "must be a int",
        ),
        ({"default": "adyen"}, "not configured: adyen"),
    ],
)
def test_a_table_that_cannot_be_followed_is_refused_saying_why(
    document: dict, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        routing_table(document, known=["simulator", "stripe"])


def test_a_table_written_as_json_reads_back_the_same() -> None:
    written = json.dumps(TABLE.document())
    assert routing_table_from_json(written, known=["simulator", "stripe"]) == TABLE
