"""Fault knobs of the simulator: how it misbehaves, set at start or at run time.

Each call draws its fate from one seeded generator, so a run with the same
seed and the same sequence of calls misbehaves the same way.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from enum import StrEnum
from typing import Any


class Fate(StrEnum):
    """What happens to one call."""

    NORMAL = "normal"
    ERROR = "error"  # a 5xx, nothing applied
    TIMEOUT = "timeout"  # hangs past the client's timeout, nothing applied
    LOST_RESPONSE = "lost_response"  # applied and booked, then the answer is dropped
    # Applied and booked; the answer hangs past the client's timeout and the
    # PSP's API says nothing of it for a while: only the webhook tells.
    WEBHOOK_ONLY = "webhook_only"
    # Applied and booked, and nothing tells: no answer, no webhook, the API
    # silent for long. Only the settlement report will show it.
    SILENT = "silent"
    OUTAGE = "outage"  # inside an outage window: everything fails


@dataclass(frozen=True, slots=True)
class Outage:
    """A window, in seconds on the simulator's monotonic clock."""

    starts_at: float
    ends_at: float


@dataclass(frozen=True, slots=True)
class FaultSettings:
    latency_ms: int = 0
    jitter_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    webhook_only_rate: float = 0.0
    silent_rate: float = 0.0
    # How long a "timed out" call hangs; must exceed the gateway's read timeout.
    hang_ms: int = 12_000
    # How long the API stays silent about a webhook-only outcome, and a silent one.
    webhook_only_hold_ms: int = 5_000
    silent_hold_ms: int = 3_600_000
    seed: int | None = None
    outages: tuple[Outage, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        rates = (
            "error_rate",
            "timeout_rate",
            "lost_response_rate",
            "webhook_only_rate",
            "silent_rate",
        )
        for name in rates:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if sum(getattr(self, name) for name in rates) > 1.0:
            raise ValueError("the fault rates add up to more than 1")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.hang_ms < 0:
            raise ValueError("latency, jitter and hang must not be negative")


def outage_windows(specs: list[str]) -> tuple[Outage, ...]:
    """Windows from `STARTS_IN:LASTS` strings (seconds from now); a spec may
    also hold several, comma-separated (as the environment variable does)."""
    now = time.monotonic()
    windows = []
    for spec in (part for item in specs for part in item.split(",") if part.strip()):
        starts_in, _, lasts = spec.partition(":")
        try:
            start, length = float(starts_in), float(lasts)
        except ValueError:
            raise ValueError(f"an outage is STARTS_IN:LASTS in seconds, not {spec!r}") from None
        if start < 0 or length <= 0:
            raise ValueError(f"an outage starts now or later and lasts a while, not {spec!r}")
        windows.append(Outage(now + start, now + start + length))
    return tuple(windows)


class Faults:
    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self._random = random.Random(self.settings.seed)
        # How many calls met each fate since start: what a run actually injected.
        self.drawn: Counter[Fate] = Counter()

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        """Change knobs at run time. `outages` take windows relative to now:
        [{"startsIn": seconds, "lasts": seconds}]. A new seed restarts the draw."""
        values = dict(changes)
        if "outages" in values:
            now = time.monotonic()
            values["outages"] = tuple(
                Outage(
                    now + float(o.get("startsIn", 0)),
                    now + float(o.get("startsIn", 0)) + float(o["lasts"]),
                )
                for o in values["outages"]
            )
        self.settings = replace(self.settings, **values)
        if "seed" in values:
            self._random = random.Random(self.settings.seed)
        return self.settings

    def in_outage(self) -> bool:
        now = time.monotonic()
        return any(o.starts_at <= now < o.ends_at for o in self.settings.outages)

    def draw(self) -> tuple[Fate, float]:
        """The fate of the next call and the latency to add before it, in seconds."""
        knobs = self.settings
        latency = knobs.latency_ms + (
            self._random.uniform(0, knobs.jitter_ms) if knobs.jitter_ms else 0
        )
        fate = Fate.OUTAGE if self.in_outage() else self._roll()
        self.drawn[fate] += 1
        return fate, (0.0 if fate is Fate.OUTAGE else latency / 1000)

    def _roll(self) -> Fate:
        knobs = self.settings
        roll = self._random.random()
        for fate, rate in (
            (Fate.ERROR, knobs.error_rate),
            (Fate.TIMEOUT, knobs.timeout_rate),
            (Fate.LOST_RESPONSE, knobs.lost_response_rate),
            (Fate.WEBHOOK_ONLY, knobs.webhook_only_rate),
            (Fate.SILENT, knobs.silent_rate),
        ):
            if roll < rate:
                return fate
            roll -= rate
        return Fate.NORMAL

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        described = asdict(self.settings)
        described["outages"] = [
            {"startsIn": round(o.starts_at - now, 3), "endsIn": round(o.ends_at - now, 3)}
            for o in self.settings.outages
            if o.ends_at > now
        ]
        return described
