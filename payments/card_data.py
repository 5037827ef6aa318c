"""Detection of primary account numbers (PANs) in anything a client sends or a
process writes down: bodies, headers, query strings, settlement reports, logs.

paystream accepts tokens only, so a match anywhere in a request refuses it, and
a match in a log line is masked; the matched value is never echoed, stored or
logged. The rules, in order (docs/security.md lists them too):

1. Reading. Every character Unicode calls a digit (`str.isdigit`: ASCII,
   fullwidth, Arabic-Indic, Devanagari, superscripts, ...) reads as its ASCII
   digit; every other letter or number reads as a letter (its NFKC form when
   that is an ASCII letter, as for fullwidth letters); everything else (spaces
   of any width, newlines, dots, commas, slashes, underscores, plus signs,
   dashes of any kind, ...) is a separator. An escape as JSON and Python
   write one (`\\n`, `\\u00a0`, `\\uff14`, `\\x..`) reads as the character it
   stands for, so a rendered log line reads as what was logged. A match masks
   the characters that were written, escapes included.
2. Groups. A group is a run of digits, whatever touches it: `card4111...` and
   `tok4111...` hold a group of 16 digits.
3. Stretches. A candidate is one group, or consecutive groups of at least
   three digits each joined by separators of any kind and width; a group of
   one or two digits (a day, a month, an hour) joins nothing. Card numbers are
   printed in groups of 4 to 6 digits (4-4-4-4, 4-6-5, 4-6-4); dates and times
   are not, so `30.11.2026 12:30:45` is never one.
4. A PAN is a candidate of 13 to 19 digits (ISO/IEC 7812) that starts in an
   issuer range in use (2200 to 2204 Mir, 2221 to 2720 Mastercard, any 3, 4, 5
   or 6) and passes the Luhn check. Unix millisecond timestamps (1... until
   2033) and dates (2026...) are in no issuer range.
5. Identifiers are not card numbers: a UUID (8-4-4-4-12 hex digits) and a hex
   word (hex digits of one case with at least one letter, 16, 24, 32, 40, ...
   long: a `uuid4().hex`, a hash, a trace id) are skipped whole. Without this,
   once digits touching letters count, about one random `uuid4().hex` in 1,000
   and one SHA-256 in 500 would look like a card number.

It runs on every request body and every log line, so the common case is cheap:
fewer than 13 digits in all is nothing to look at, and no 13 digits joined by
separators only is settled by one regular expression.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

_MIN_PAN, _MAX_PAN = 13, 19
# A group of fewer digits is a day, a month or an hour, never part of a printed card number.
_MIN_JOINED_GROUP = 3
_MASK = "[REDACTED PAN]"
# Hex identifiers are whole 32-bit words: 16 (64-bit ids, span ids), 24 (ObjectId),
# 32 (uuid4().hex, MD5, trace ids), 40 (SHA-1), 64 (SHA-256) hex digits. A card number
# glued to a few hex letters (`cc4111…`, 18) is not such a length.
_HEX_WORD_UNIT = 8

_AT_LEAST_13_DIGITS = re.compile(r"(?:[^0-9]*+[0-9]){13}")
# 13 digits or more joined by separators only: where a PAN can be, once read as ASCII.
_CANDIDATE = re.compile(r"[0-9](?:[^0-9A-Za-z]*+[0-9]){12,}+")
_GROUP = re.compile(r"[0-9]+")
# Escapes as JSON, Python's repr and so log lines write characters: a newline as \n,
# a no-break space as \u00a0, a fullwidth 4 as \uff14, past the BMP a surrogate pair.
_ESCAPE = re.compile(
    r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[nrtbfv])"
)
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?![0-9A-Za-z])"
)
_HEX_WORD = re.compile(
    r"(?<![0-9A-Za-z])(?:(?=[0-9]*+[a-f])[0-9a-f]{16,}+|(?=[0-9]*+[A-F])[0-9A-F]{16,}+)"
    r"(?![0-9A-Za-z])"
)


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


def _in_issuer_range(digits: str) -> bool:
    first = digits[0]
    if first in "3456":
        return True
    if first != "2":
        return False
    prefix = int(digits[:4])
    return 2200 <= prefix <= 2204 or 2221 <= prefix <= 2720


def _looks_like_pan(digits: str) -> bool:
    return _MIN_PAN <= len(digits) <= _MAX_PAN and _in_issuer_range(digits) and luhn_valid(digits)


@lru_cache(maxsize=4096)
def _read_as_ascii(char: str) -> str:
    """One non-ASCII character as the detector reads it (rule 1): a digit, a
    letter (ASCII if NFKC makes it one, else `x`) or a space."""
    if char.isdigit():
        return str(unicodedata.digit(char))
    if char.isalnum():
        folded = unicodedata.normalize("NFKC", char)
        return folded if len(folded) == 1 and folded.isascii() and folded.isalpha() else "x"
    return " "


def _reading(text: str) -> tuple[str, list[int] | None] | None:
    """`text` as the detector reads it (rule 1), with, when escapes made the
    reading shorter, where each of its characters starts in `text` (and a last
    entry, the end); None when it holds fewer than 13 digits of any script.
    Every escaped digit keeps an ASCII digit in its escape, so the count holds."""
    if text.isascii():
        if not _AT_LEAST_13_DIGITS.match(text):
            return None
    elif sum(map(str.isdigit, text)) < _MIN_PAN:
        return None
    if "\\" not in text or not _ESCAPE.search(text):
        return _read_chars(text), None
    pieces: list[str] = []
    starts: list[int] = []
    position = 0
    for escape in _ESCAPE.finditer(text):
        pieces.append(_read_chars(text[position : escape.start()]))
        starts.extend(range(position, escape.start()))
        pieces.append(_read_chars(_unescape(escape.group())))
        starts.append(escape.start())
        position = escape.end()
    pieces.append(_read_chars(text[position:]))
    starts.extend(range(position, len(text) + 1))
    return "".join(pieces), starts


def _read_chars(text: str) -> str:
    if text.isascii():
        return text
    return "".join(char if char.isascii() else _read_as_ascii(char) for char in text)


def _unescape(escape: str) -> str:
    """The one character an escape stands for (a space for a control character)."""
    if len(escape) == 2:
        return " "
    if len(escape) == 12:  # a surrogate pair
        high, low = int(escape[2:6], 16), int(escape[8:12], 16)
        code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
    else:
        code = int(escape[2:], 16)
    return chr(code) if code <= sys.maxunicode else " "


def _pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield the (start, end) of every stretch of ``text`` that looks like a PAN."""
    read = _reading(text)
    if read is None or not _long_segments(read[0]):
        return
    reading, starts = read
    if "-" in reading:
        reading = _UUID.sub(_as_letters, reading)
    reading = _HEX_WORD.sub(_hex_identifier_as_letters, reading)
    for segment in _long_segments(reading):
        for start, end in _pan_stretches(reading, segment):
            yield (start, end) if starts is None else (starts[start], starts[end])


def _long_segments(reading: str) -> list[list[tuple[int, int]]]:
    """The runs of groups that may join into a PAN (rules 2 and 3): groups of
    three digits or more, consecutive, 13 digits or more in all."""
    segments = []
    for candidate in _CANDIDATE.finditer(reading):
        segment: list[tuple[int, int]] = []
        for group in _GROUP.finditer(reading, *candidate.span()):
            start, end = group.span()
            if end - start >= _MIN_JOINED_GROUP:
                segment.append((start, end))
                continue
            if sum(e - s for s, e in segment) >= _MIN_PAN:
                segments.append(segment)
            segment = []
        if sum(e - s for s, e in segment) >= _MIN_PAN:
            segments.append(segment)
    return segments


def _as_letters(match: re.Match[str]) -> str:
    return "x" * len(match.group())


def _hex_identifier_as_letters(match: re.Match[str]) -> str:
    word = match.group()
    return "x" * len(word) if len(word) % _HEX_WORD_UNIT == 0 else word


def _pan_stretches(reading: str, segment: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The PANs among a segment's consecutive groups (rule 4), shortest first,
    without overlap."""
    first = 0
    while first < len(segment):
        digits = ""
        for last in range(first, len(segment)):
            start, end = segment[last]
            digits += reading[start:end]
            if len(digits) > _MAX_PAN:
                break
            if _looks_like_pan(digits):
                yield segment[first][0], end
                first = last
                break
        first += 1


def contains_pan(text: str) -> bool:
    return next(_pan_spans(text), None) is not None


def mask_pans(text: str) -> str:
    """Replace every PAN-like stretch by a fixed mask (used by the log filter)."""
    for start, end in reversed(list(_pan_spans(text))):
        text = text[:start] + _MASK + text[end:]
    return text
