"""Domain errors. Each carries the stable API code it is reported under."""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidState(DomainError):
    code = "invalid_state"


class AmountTooLarge(DomainError):
    code = "amount_exceeds_available"


class OrderAlreadyExists(DomainError):
    """A merchant's order has one payment: another request made it first."""

    code = "order_already_exists"

    def __init__(self, order_id: str, payment_id: str | None) -> None:
        super().__init__(f"order {order_id!r} already has payment {payment_id}")
        self.payment_id = payment_id


class InconsistentPspAnswer(DomainError):
    """The PSP told us something impossible (more captured than authorized, say).
    PSP answers are untrusted input: such an answer changes nothing."""

    code = "inconsistent_psp_answer"
