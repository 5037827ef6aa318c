"""Money in integer minor units with an ISO 4217 currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass

# Active ISO 4217 codes with their minor-unit exponent (ISO 4217 list one,
# as published by the maintenance agency). Codes missing here are refused.
_TWO_DECIMALS = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR
    KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
    MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR
    SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS
    UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWG
"""
_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys(_NO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
    "CLF": 4,
    "UYW": 4,
}

# Largest amount accepted in minor units: 12 digits keeps any currency's
# largest realistic card payment and stays far inside Postgres bigint.
MAX_AMOUNT = 999_999_999_999


def is_currency(code: str) -> bool:
    return code in _EXPONENTS


def exponent(code: str) -> int:
    return _EXPONENTS[code]


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
