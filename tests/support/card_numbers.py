"""Card numbers in every shape that once slipped through (issue #13), and the
search that finds one wherever it ended up, whatever its shape."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

PAN = "4111111111111111"


def _in_digits_from(zero: int) -> str:
    return "".join(chr(zero + int(digit)) for digit in PAN)


def _grouped(separator: str) -> str:
    return separator.join(PAN[start : start + 4] for start in range(0, 16, 4))


FULLWIDTH = _in_digits_from(0xFF10)
ARABIC_INDIC = _in_digits_from(0x0660)
SHAPES = [
    PAN,
    _grouped(" "),
    _grouped("."),
    _grouped("/"),
    _grouped("_"),
    _grouped(","),
    _grouped("+"),
    _grouped("\n"),
    _grouped("\u00a0"),  # no-break space
    _grouped("\u2009"),  # thin space
    _grouped("\u2013"),  # en dash
    _grouped("     "),  # a wider gap
    f"card{PAN}",
    f"tok{PAN}",
    FULLWIDTH,
    ARABIC_INDIC,
]
ASCII_SHAPES = [shape for shape in SHAPES if shape.isascii()]


def read_digits(text: str) -> str:
    """Every digit of any script in `text`, as ASCII, everything else dropped."""
    return "".join(str(unicodedata.digit(char)) for char in text if char.isdigit())


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|U([0-9a-fA-F]{8}))")
# The test number's digits in order, with up to eight other characters between two:
# any separator, an escaped newline, a wide gap, letters.
_PAN_IN_ANY_SHAPE = re.compile("[^0-9]{0,8}".join(PAN))


def holds_pan(text: str) -> bool:
    """Whether `text` (a dump, a log, an answer) holds the test card number in
    any shape: escapes (\\u00a0, \\xa0) undone, digits of every script read as
    ASCII, separators and letters between the digits allowed. Independent of
    the detector under test, so a shape that slipped past it is still found."""
    text = _ESCAPE.sub(_unescape, text)
    if not text.isascii():
        text = text.translate(_ascii_digits())
    return _PAN_IN_ANY_SHAPE.search(text) is not None


def _unescape(match: re.Match[str]) -> str:
    code = int(next(group for group in match.groups() if group), 16)
    return chr(code) if code <= sys.maxunicode else match.group()


@functools.cache
def _ascii_digits() -> dict[int, str]:
    return {
        code: str(unicodedata.digit(chr(code)))
        for code in range(0x80, sys.maxunicode + 1)
        if chr(code).isdigit()
    }
