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


class InconsistentPspAnswer(DomainError):
    """The PSP told us something impossible (more captured than authorized, say).
    PSP answers are untrusted input: such an answer changes nothing."""

    code = "inconsistent_psp_answer"
