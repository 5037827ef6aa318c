"""Prefixed, time-ordered identifiers (`pay_…`, `evt_…`).

The body is a ULID: 48 bits of milliseconds then 80 random bits in Crockford
base32, so ids sort by creation time and a list can page on the id alone.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from datetime import timedelta

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_base32(millis, 10)}{_base32(randomness, 16)}"


# An id and its row's created_at are both taken from the writer's clock within
# a moment of each other; a minute either way is a margin, not a tolerance.
ID_CLOCK_MARGIN = timedelta(minutes=1)


def id_at(prefix: str, moment: datetime) -> str:
    """The smallest id of this prefix that can be made at `moment`: a time
    bound as an id bound, which an index on the id serves."""
    made = new_id(prefix, now_ms=int(moment.timestamp() * 1000))
    return made[: len(prefix) + 11] + "0" * 16


def is_id(value: str, prefix: str) -> bool:
    head, _, body = value.partition("_")
    return head == prefix and len(body) == 26 and all(c in _ALPHABET for c in body)
