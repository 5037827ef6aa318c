"""Which PSP takes a new payment: a routing table of rules, first match wins,
and a default. Pure; the table comes from the settings.

A payment keeps the PSP it was routed to for life: its token (`pm_…`,
`tok_…`) is valid at that PSP only, so paystream never moves a payment to
another PSP, not even when its PSP is down (no failover).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Route:
    """Payments this rule sends to `psp`: every condition given must hold."""

    psp: str
    merchant: str | None = None
    currency: str | None = None
    min_amount: int | None = None  # minor units, inclusive
    max_amount: int | None = None  # minor units, inclusive

    def matches(self, merchant_id: str, currency: str, amount: int) -> bool:
        return (
            (self.merchant is None or self.merchant == merchant_id)
            and (self.currency is None or self.currency == currency)
            and (self.min_amount is None or amount >= self.min_amount)
            and (self.max_amount is None or amount <= self.max_amount)
        )

    def describe(self) -> str:
        conditions = []
        if self.merchant is not None:
            conditions.append(f"merchant {self.merchant}")
        if self.currency is not None:
            conditions.append(f"currency {self.currency}")
        if self.min_amount is not None:
            conditions.append(f"amount >= {self.min_amount}")
        if self.max_amount is not None:
            conditions.append(f"amount <= {self.max_amount}")
        return " and ".join(conditions) or "every payment"


@dataclass(frozen=True, slots=True)
class RoutingTable:
    default: str
    routes: tuple[Route, ...] = ()

    def choose(self, merchant_id: str, currency: str, amount: int) -> str:
        for route in self.routes:
            if route.matches(merchant_id, currency, amount):
                return route.psp
        return self.default

    def psps(self) -> list[str]:
        """Every PSP the table can choose."""
        return sorted({self.default, *(route.psp for route in self.routes)})

    def lines(self) -> list[tuple[str, str]]:
        """The table for people, in the order it is read: (condition, psp)."""
        return [(route.describe(), route.psp) for route in self.routes] + [
            ("anything else", self.default)
        ]

    def document(self) -> dict[str, Any]:
        """The table in the JSON form `routing_table` reads."""
        routes = []
        for route in self.routes:
            rule = {
                "psp": route.psp,
                "merchant": route.merchant,
                "currency": route.currency,
                "minAmount": route.min_amount,
                "maxAmount": route.max_amount,
            }
            routes.append({key: value for key, value in rule.items() if value is not None})
        return {"default": self.default, "routes": routes}


_FIELDS = {"psp", "merchant", "currency", "minAmount", "maxAmount"}


def routing_table(document: Mapping[str, Any], *, known: Sequence[str]) -> RoutingTable:
    """A table from its JSON form:
    `{"default": "simulator", "routes": [{"psp": "stripe", "currency": "EUR",
    "minAmount": 1000}]}`. ValueError naming what is wrong, including a PSP
    that is not in `known` (the connectors configured here)."""
    default = document.get("default")
    if not isinstance(default, str):
        raise ValueError('the routing table needs a "default" PSP')
    routes = []
    for index, rule in enumerate(document.get("routes") or []):
        if not isinstance(rule, Mapping) or not isinstance(rule.get("psp"), str):
            raise ValueError(f"route {index} needs a psp")
        unknown = set(rule) - _FIELDS
        if unknown:
            raise ValueError(f"route {index} has unknown fields: {', '.join(sorted(unknown))}")
        routes.append(
            Route(
                psp=rule["psp"],
                merchant=_optional(rule, "merchant", str, index),
                currency=_optional(rule, "currency", str, index),
                min_amount=_optional(rule, "minAmount", int, index),
                max_amount=_optional(rule, "maxAmount", int, index),
            )
        )
    table = RoutingTable(default, tuple(routes))
    strangers = sorted(set(table.psps()) - set(known))
    if strangers:
        raise ValueError(
            f"the routing table names PSPs that are not configured: {', '.join(strangers)}"
            f" (configured: {', '.join(known)})"
        )
    return table


def routing_table_from_json(text: str, *, known: Sequence[str]) -> RoutingTable:
    """A table from its JSON text; ValueError naming what is wrong."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"the routing table is not JSON: {error}") from None
    if not isinstance(document, Mapping):
        raise ValueError("the routing table is a JSON object")
    return routing_table(document, known=known)


def _optional(rule: Mapping[str, Any], name: str, kind: type, index: int) -> Any:
    value = rule.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ValueError(f"route {index}: {name} must be a {kind.__name__}")
    return value
