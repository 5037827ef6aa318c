"""The calls paystream makes to the PSP, and the idempotency key each is sent
under. A key is derived from the object it acts on, so every retry of an
operation, by any worker, reuses it and the PSP books it once."""

from __future__ import annotations

from enum import StrEnum


class OperationKind(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class OperationStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def psp_key(kind: OperationKind, object_id: str) -> str:
    """`pay_…:authorize`, `pay_…:capture`, `pay_…:void`, `re_…:refund`."""
    return f"{object_id}:{kind.value}"


def pending_action(kind: OperationKind) -> str:
    """What a payment shows (`pendingAction`) while its capture or void is
    under way: `capture` or `cancel`, in the merchant's words."""
    return "capture" if kind is OperationKind.CAPTURE else "cancel"


def expiry_key(payment_id: str) -> str:
    """`pay_…:expire`: the cancel paystream asks of the PSP when a customer
    never finished authenticating. Not the void's key: should the PSP refuse
    it (the customer finished just then), a merchant's later cancel must not
    be answered with that refusal again."""
    return f"{payment_id}:expire"
