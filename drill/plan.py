"""What each payment of a drill will go through, drawn from one seed: the
same seed gives the same workload."""

from __future__ import annotations

import random
from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True, slots=True)
class PaymentPlan:
    order_id: str
    amount: int
    token: str
    capture_method: str
    # For a manual payment once AUTHORIZED: capture it all, capture part, or cancel.
    then: str = "capture"
    capture_amount: int | None = None
    # Refunds once CAPTURED, in order; None refunds whatever is left.
    refunds: tuple[int | None, ...] = field(default_factory=tuple)
    # Send the create request twice at once with one key, then once more, and
    # expect the same answer every time.
    resend: bool = False


# The simulator's tokens, by share: mostly approvals, some declines of each
# kind, and cards whose issuer refuses refunds.
SIMULATOR_TOKENS = (
    ("tok_visa", 0.70),
    ("tok_mastercard", 0.10),
    ("tok_decline", 0.06),
    ("tok_insufficient_funds", 0.04),
    ("tok_refund_fails", 0.10),
)


def make_plans(
    count: int, seed: int, shares: tuple[tuple[str, float], ...] = SIMULATOR_TOKENS
) -> list[PaymentPlan]:
    """`shares`: the PSP's payment method tokens, each with its share."""
    draw = random.Random(seed)
    tokens = [token for token, _ in shares]
    weights = [weight for _, weight in shares]
    plans = []
    for index in range(count):
        amount = draw.randrange(100, 100_000)
        manual = draw.random() < 0.5
        then, capture = "capture", None
        if manual:
            then = draw.choices(["capture", "partial_capture", "cancel"], [0.4, 0.3, 0.3])[0]
            if then == "partial_capture":
                capture = draw.randrange(1, amount)
        captured = capture or amount
        refunds: tuple[int | None, ...] = ()
        shape = draw.choices(["none", "full", "partial", "partials"], [0.3, 0.3, 0.25, 0.15])[0]
        if shape == "full":
            refunds = (None,)
        elif shape == "partial" and captured > 1:
            refunds = (draw.randrange(1, captured),)
        elif shape == "partials" and captured > 2:
            first = draw.randrange(1, captured - 1)
            refunds = (first, None)
        plans.append(
            PaymentPlan(
                order_id=f"drill-{seed}-{index:06d}",
                amount=amount,
                token=draw.choices(tokens, weights)[0],
                capture_method="manual" if manual else "automatic",
                then=then,
                capture_amount=capture,
                refunds=refunds,
                resend=draw.random() < 0.2,
            )
        )
    return plans
