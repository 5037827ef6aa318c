"""Detection of primary account numbers (PANs) in anything a client sends.

A PAN is 13 to 19 digits, optionally grouped with spaces or dashes, not glued
to letters, that starts with an issuer digit and passes the Luhn check
(ISO/IEC 7812).
paystream accepts tokens only, so a match anywhere in a request refuses it;
the matched value is never echoed, stored or logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

# Runs of digits joined by up to three spaces, tabs or dashes; each run is split into its
# digit groups and every contiguous stretch of 13 to 19 digits is checked. Digits glued
# to letters are part of an identifier (a hex id, a UUID), not a card number: without
# this, one random 32-hex-digit idempotency key in ~500 would be refused.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]+(?:[ \t-]{1,3}[0-9]+)*(?![0-9A-Za-z])")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_MIN_PAN, _MAX_PAN = 13, 19
# Every card scheme in use issues numbers starting with 2 to 6 (Mastercard 2-series
# and 5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay/Maestro 6). Requiring it keeps
# Unix millisecond timestamps (13 digits starting with 1) from being refused.
_ISSUER_FIRST_DIGITS = frozenset("23456")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _looks_like_pan(digits: str) -> bool:
    return (
        _MIN_PAN <= len(digits) <= _MAX_PAN
        and digits[0] in _ISSUER_FIRST_DIGITS
        and luhn_valid(digits)
    )


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield the (start, end) of every stretch of ``text`` that looks like a PAN."""
    if "-" in text:
        # A UUID whose first groups happen to be all digits is not a card number.
        text = _UUID.sub(lambda match: "u" * len(match.group()), text)
    for run in _DIGIT_RUN.finditer(text):
        if len(run.group()) < _MIN_PAN:
            continue
        groups = [(m.start(), m.end()) for m in re.finditer(r"[0-9]+", run.group())]
        yield from _pan_spans_in_groups(run.group(), groups, run.start())


def _pan_spans_in_groups(
    run: str, groups: list[tuple[int, int]], offset: int
) -> Iterator[tuple[int, int]]:
    first = 0
    while first < len(groups):
        digits = ""
        for last in range(first, len(groups)):
            digits += run[groups[last][0] : groups[last][1]]
            if len(digits) > _MAX_PAN:
                break
            if _looks_like_pan(digits):
                yield offset + groups[first][0], offset + groups[last][1]
                first = last
                break
        first += 1


def contains_pan(text: str) -> bool:
    return next(_pan_spans(text), None) is not None


def mask_pans(text: str) -> str:
    """Replace every PAN-like stretch by a fixed mask (used by the log filter)."""
    for start, end in reversed(list(_pan_spans(text))):
        text = text[:start] + "[REDACTED PAN]" + text[end:]
    return text


def find_pan_path(value: Any) -> str | None:
    """Return the JSON pointer of the first value (or key) in a decoded JSON
    document that carries a PAN, or None. Numbers count: a card number sent
    as a JSON integer is still a card number."""
    return find_path(value, contains_pan)


def find_path(value: Any, test: Callable[[str], bool], path: str = "") -> str | None:
    """The JSON pointer of the first key, string or number (as its repr) in a
    decoded JSON document for which `test` is true, or None."""
    if isinstance(value, str):
        return path or "/" if test(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return path or "/" if test(repr(value)) else None
    if isinstance(value, dict):
        for key, item in value.items():
            pointer = f"{path}/{_escape(str(key))}"
            if test(str(key)):
                return pointer
            found = find_path(item, test, pointer)
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_path(item, test, f"{path}/{index}")
            if found is not None:
                return found
    return None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
