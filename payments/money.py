"""Money in integer minor units with an ISO 4217 currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from iso4217 import Currency

# Largest amount accepted in minor units: 12 digits keeps any currency's
# largest realistic card payment and stays far inside Postgres bigint.
MAX_AMOUNT = 999_999_999_999


@cache
def _exponents() -> dict[str, int]:
    """Active ISO 4217 codes and their minor-unit exponents, from the `iso4217`
    package (the maintenance agency's list one, as published; upgrading the
    package brings new codes such as VED or XCG). Codes without a minor unit
    (gold, SDR, the testing and "no currency" codes) are not money one can
    charge a card in, so they are left out. Loaded on first use: parsing the
    list costs about 0.1 s, which no process should pay at import."""
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def is_currency(code: str) -> bool:
    return code in _exponents()


def exponent(code: str) -> int:
    return _exponents()[code]


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not is_currency(self.currency):
            raise ValueError(f"unknown currency {self.currency!r}")
        if not 0 <= self.amount <= MAX_AMOUNT:
            raise ValueError("amount out of range")

    def __str__(self) -> str:
        digits = exponent(self.currency)
        if digits == 0:
            return f"{self.amount} {self.currency}"
        major, minor = divmod(self.amount, 10**digits)
        return f"{major}.{minor:0{digits}d} {self.currency}"
