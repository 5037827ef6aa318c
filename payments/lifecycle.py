"""How a payment moves: merchant requests and PSP facts in, changes out.
Pure functions, no I/O.

Every fact function takes the payment as it is now and answers either the
change to write or None when the fact is already reflected (a duplicate, a
late webhook, a retry that lost the race). That makes every caller safe to run
twice. Request checks raise a DomainError naming why not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from payments.errors import AmountTooLarge
from payments.errors import InconsistentPspAnswer
from payments.errors import InvalidState
from payments.events import EventType
from payments.status import AUTHORIZING
from payments.status import CaptureMethod
from payments.status import PaymentStatus
from payments.status import can_move


@dataclass(frozen=True, slots=True)
class PaymentState:
    status: PaymentStatus
    capture_method: CaptureMethod
    amount: int
    authorized_amount: int = 0
    captured_amount: int = 0
    refunded_amount: int = 0
    # Refunds in flight plus succeeded ones (see refund_amount).
    refund_reserved_amount: int = 0
    # A capture or cancel asked for and not yet confirmed by the PSP.
    pending_action: str | None = None


# Facts the PSP tells us, by its answer, a status inquiry or a webhook.
@dataclass(frozen=True, slots=True)
class Authorized:
    psp_reference: str
    amount: int


@dataclass(frozen=True, slots=True)
class Captured:
    psp_reference: str
    authorized_amount: int
    captured_amount: int


@dataclass(frozen=True, slots=True)
class Declined:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Voided:
    psp_reference: str


@dataclass(frozen=True, slots=True)
class ActionRequired:
    """The PSP asks the customer to authenticate (3-D Secure) before it
    decides: where to send them (None when the PSP's own script shows the
    page), and how long paystream waits for them (`expires_in`, a setting)."""

    psp_reference: str
    url: str | None
    expires_in: timedelta


PspFact = Authorized | Captured | Declined | Voided | ActionRequired

# Why a payment failed when the customer never finished authenticating: the
# PSP still waited for them past the expiry (and cancelled), or cancelled.
AUTHENTICATION_EXPIRED = Declined(
    "authentication_expired", "The customer did not authenticate in time."
)


@dataclass(frozen=True, slots=True)
class Change:
    """What to write: the new status, the amounts after it and the event type."""

    status: PaymentStatus
    event_type: EventType
    authorized_amount: int
    captured_amount: int
    refunded_amount: int | None = None  # None: unchanged
    psp_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # Into REQUIRES_ACTION: where the customer authenticates, and for how long.
    next_action_url: str | None = None
    action_expires_in: timedelta | None = None


def apply_fact(state: PaymentState, fact: PspFact) -> Change | None:
    if isinstance(fact, Authorized):
        return _authorized(state, fact)
    if isinstance(fact, Captured):
        return _captured(state, fact)
    if isinstance(fact, Declined):
        return _declined(state, fact)
    if isinstance(fact, ActionRequired):
        return _action_required(state, fact)
    return _voided(state, fact)


def _action_required(state: PaymentState, fact: ActionRequired) -> Change | None:
    if not can_move(state.status, PaymentStatus.REQUIRES_ACTION):
        return None  # asked already, or decided since: a late word changes nothing
    return Change(
        status=PaymentStatus.REQUIRES_ACTION,
        event_type=EventType.PAYMENT_REQUIRES_ACTION,
        authorized_amount=0,
        captured_amount=0,
        psp_reference=fact.psp_reference,
        next_action_url=fact.url,
        action_expires_in=fact.expires_in,
    )


def _authorized(state: PaymentState, fact: Authorized) -> Change | None:
    if not can_move(state.status, PaymentStatus.AUTHORIZED):
        return None
    if not 0 < fact.amount <= state.amount:
        raise InconsistentPspAnswer(f"authorized {fact.amount} of a payment of {state.amount}")
    return Change(
        status=PaymentStatus.AUTHORIZED,
        event_type=EventType.PAYMENT_AUTHORIZED,
        authorized_amount=fact.amount,
        captured_amount=0,
        psp_reference=fact.psp_reference,
    )


def _captured(state: PaymentState, fact: Captured) -> Change | None:
    if not can_move(state.status, PaymentStatus.CAPTURED):
        return None
    if not 0 < fact.captured_amount <= fact.authorized_amount <= state.amount:
        raise InconsistentPspAnswer(
            f"captured {fact.captured_amount} of {fact.authorized_amount} authorized "
            f"on a payment of {state.amount}"
        )
    return Change(
        status=PaymentStatus.CAPTURED,
        event_type=EventType.PAYMENT_CAPTURED,
        authorized_amount=fact.authorized_amount,
        captured_amount=fact.captured_amount,
        psp_reference=fact.psp_reference,
    )


def _declined(state: PaymentState, fact: Declined) -> Change | None:
    # Only an authorization (the customer's authentication included) can be
    # declined into FAILED; a refused capture or void leaves the
    # authorization as it is (see capture_refused).
    if state.status not in AUTHORIZING:
        return None
    return Change(
        status=PaymentStatus.FAILED,
        event_type=EventType.PAYMENT_FAILED,
        authorized_amount=0,
        captured_amount=0,
        failure_code=fact.code,
        failure_message=fact.message,
    )


def _voided(state: PaymentState, fact: Voided) -> Change | None:
    if state.status is PaymentStatus.REQUIRES_ACTION:
        # Cancelled at the PSP while it waited for the customer (our expiry
        # cancels it so): nothing was authorized, and nothing will be.
        return _declined(state, AUTHENTICATION_EXPIRED)
    if not can_move(state.status, PaymentStatus.CANCELED):
        return None
    return Change(
        status=PaymentStatus.CANCELED,
        event_type=EventType.PAYMENT_CANCELED,
        authorized_amount=state.authorized_amount,
        captured_amount=0,
        psp_reference=fact.psp_reference,
    )


def refund_succeeded(state: PaymentState, amount: int) -> Change:
    """A refund the PSP confirmed: REFUNDED once the refunds add up to the capture."""
    refunded = state.refunded_amount + amount
    if refunded > state.captured_amount:
        raise InconsistentPspAnswer(
            f"refunds of {refunded} exceed the captured {state.captured_amount}"
        )
    fully = refunded == state.captured_amount
    return Change(
        status=PaymentStatus.REFUNDED if fully else state.status,
        event_type=EventType.PAYMENT_REFUNDED if fully else EventType.PAYMENT_PARTIALLY_REFUNDED,
        authorized_amount=state.authorized_amount,
        captured_amount=state.captured_amount,
        refunded_amount=refunded,
    )


def needs_capture_after_authorization(state: PaymentState) -> bool:
    """An automatic payment the PSP only authorized still has to be captured."""
    return (
        state.capture_method is CaptureMethod.AUTOMATIC and state.status is PaymentStatus.AUTHORIZED
    )


def capture_amount(state: PaymentState, requested: int | None) -> int:
    """The amount a merchant's capture request will capture, or why not."""
    if state.status is not PaymentStatus.AUTHORIZED:
        raise InvalidState(f"a payment in status {state.status} cannot be captured")
    if state.pending_action is not None:
        raise InvalidState(f"a {state.pending_action} of this payment is already in progress")
    amount = state.authorized_amount if requested is None else requested
    if amount > state.authorized_amount:
        raise AmountTooLarge(
            f"capture of {amount} exceeds the authorized amount {state.authorized_amount}"
        )
    return amount


def check_cancelable(state: PaymentState) -> None:
    if state.status is not PaymentStatus.AUTHORIZED:
        raise InvalidState(f"a payment in status {state.status} cannot be canceled")
    if state.pending_action == "capture":
        raise InvalidState("a capture of this payment is already in progress")


def check_confirmable(state: PaymentState) -> None:
    """A merchant's confirm asks the PSP how the customer's authentication
    ended: only while the payment waits for it."""
    if state.status is not PaymentStatus.REQUIRES_ACTION:
        raise InvalidState(
            f"a payment in status {state.status} is not waiting for its customer to authenticate"
        )


def refundable_amount(state: PaymentState) -> int:
    """What is left to refund: captured, less refunds succeeded or in flight."""
    if state.status is not PaymentStatus.CAPTURED:
        raise InvalidState(f"a payment in status {state.status} cannot be refunded")
    return state.captured_amount - state.refund_reserved_amount


def refund_amount(state: PaymentState, requested: int | None) -> int:
    available = refundable_amount(state)
    if available <= 0:
        raise AmountTooLarge("the whole captured amount is refunded or being refunded")
    amount = available if requested is None else requested
    if amount > available:
        raise AmountTooLarge(f"refund of {amount} exceeds the refundable amount {available}")
    return amount
