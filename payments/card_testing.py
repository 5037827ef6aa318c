"""Card testing: a stolen key or a fraudster's checkout sends many small
authorizations with card after card, most of them declined (OWASP API6,
sensitive business flows). When a key's recent authorizations are mostly
declines, new payments from it are throttled.

Outcomes are counted per key in buckets of `window` seconds; a decision looks
at the current bucket and the one before, so the view always spans at least
one whole window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CardTestingPolicy:
    # Ten minutes: card testers work in bursts of minutes.
    window: int = 600
    # Below this many outcomes nothing is judged: a few declines are normal.
    min_attempts: int = 20
    # Issuers decline 5 to 15 % of honest traffic; 80 % is an attack.
    decline_ratio: float = 0.8


def bucket_keys(key_id: str, now: float, window: int) -> tuple[str, str]:
    """The Redis hash of the current bucket, and of the one before."""
    current = int(now) // window
    return f"cardtest:{key_id}:{current}", f"cardtest:{key_id}:{current - 1}"


def looks_like_card_testing(total: int, declined: int, policy: CardTestingPolicy) -> bool:
    return total >= policy.min_attempts and declined >= policy.decline_ratio * total
