"""What the simulated bank answers, chosen by the payment method token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decline:
    code: str
    message: str


APPROVING_TOKENS = frozenset({"tok_visa", "tok_mastercard", "tok_amex", "tok_refund_fails"})

DECLINES: dict[str, Decline] = {
    "tok_decline": Decline("card_declined", "The card was declined."),
    "tok_insufficient_funds": Decline("insufficient_funds", "The card has insufficient funds."),
    "tok_expired_card": Decline("expired_card", "The card has expired."),
    "tok_fraudulent": Decline("suspected_fraud", "The issuer suspects fraud."),
}

# Ask the customer to authenticate (3-D Secure) first: the charge waits as
# `requires_action` until the simulator's challenge page (its `nextActionUrl`)
# is passed (then it approves, as tok_visa) or failed.
AUTHENTICATING_TOKENS = frozenset({"tok_3ds_required"})
AUTHENTICATION_FAILED = Decline(
    "authentication_failed", "The customer failed 3-D Secure authentication."
)

UNKNOWN_TOKEN = Decline("invalid_token", "The payment method token is not known.")
# Approves the payment, then the issuer refuses every refund on it.
REFUND_DECLINE = Decline("refund_declined", "The issuer refused the refund.")


def authorization_outcome(token: str) -> Decline | None:
    """None approves; a Decline says why not."""
    if token in APPROVING_TOKENS or token in AUTHENTICATING_TOKENS:
        return None
    return DECLINES.get(token, UNKNOWN_TOKEN)


def refund_outcome(token: str) -> Decline | None:
    return REFUND_DECLINE if token == "tok_refund_fails" else None


def asks_authentication(token: str) -> bool:
    return token in AUTHENTICATING_TOKENS
