"""The simulator's words, mapped to ours in one place: its payment and refund
statuses, its objects, and its callbacks. Each mapping is exhaustive (a table
of every status the simulator has, or a `match` that mypy holds to every
callback); a status it does not have is UNKNOWN, never a guess. Its answers
are untrusted input: what cannot be read raises KeyError, TypeError or
ValueError for the caller to classify."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from typing import assert_never

from psp.protocol import PspEvent
from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefund
from psp.protocol import PspRefundStatus


class SimulatorPaymentStatus(StrEnum):
    """What the simulator's book says of a charge."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    # Waiting for the customer's 3-D Secure answer on the challenge page.
    REQUIRES_ACTION = "requires_action"


class SimulatorRefundStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# Every status of the simulator's book, to ours; the unit tests hold each
# table to every status the book writes.
_PAYMENT_STATUSES: dict[str, PspPaymentStatus] = {
    SimulatorPaymentStatus.AUTHORIZED: PspPaymentStatus.AUTHORIZED,
    SimulatorPaymentStatus.CAPTURED: PspPaymentStatus.CAPTURED,
    SimulatorPaymentStatus.DECLINED: PspPaymentStatus.DECLINED,
    SimulatorPaymentStatus.VOIDED: PspPaymentStatus.VOIDED,
    SimulatorPaymentStatus.REQUIRES_ACTION: PspPaymentStatus.REQUIRES_ACTION,
}
_REFUND_STATUSES: dict[str, PspRefundStatus] = {
    SimulatorRefundStatus.SUCCEEDED: PspRefundStatus.SUCCEEDED,
    SimulatorRefundStatus.FAILED: PspRefundStatus.FAILED,
}


def payment_status(raw: object) -> PspPaymentStatus:
    return _PAYMENT_STATUSES.get(str(raw), PspPaymentStatus.UNKNOWN)


def refund_status(raw: object) -> PspRefundStatus:
    return _REFUND_STATUSES.get(str(raw), PspRefundStatus.UNKNOWN)


def payment_from_json(body: dict[str, Any]) -> PspPayment:
    return PspPayment(
        psp_reference=str(body["id"]),
        reference=str(body["reference"]),
        status=payment_status(body.get("status")),
        amount=int(body["amount"]),
        currency=str(body["currency"]),
        authorized_amount=int(body.get("authorizedAmount") or 0),
        captured_amount=int(body.get("capturedAmount") or 0),
        refunded_amount=int(body.get("refundedAmount") or 0),
        decline_code=body.get("declineCode"),
        decline_message=body.get("declineMessage"),
        next_action_url=str(body["nextActionUrl"]) if body.get("nextActionUrl") else None,
    )


def refund_from_json(body: dict[str, Any]) -> PspRefund:
    return PspRefund(
        psp_reference=str(body["id"]),
        reference=str(body["reference"]),
        payment_psp_reference=str(body["paymentId"]),
        status=refund_status(body.get("status")),
        amount=int(body["amount"]),
        failure_code=body.get("failureCode"),
    )


class SimulatorEvent(StrEnum):
    """The callbacks the simulator sends: one per outcome it books."""

    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CAPTURED = "payment.captured"
    PAYMENT_DECLINED = "payment.declined"
    PAYMENT_VOIDED = "payment.voided"
    PAYMENT_REQUIRES_ACTION = "payment.requires_action"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"


def event_from_json(payload: dict[str, Any]) -> PspEvent | None:
    """A callback's news, its object read as the API answers it; None for a
    type the simulator does not send. ValueError when malformed."""
    event_type, body = payload.get("type"), payload.get("data")
    if not isinstance(body, dict):
        raise ValueError("the event has no data object")
    try:
        event = SimulatorEvent(str(event_type))
    except ValueError:
        return None
    try:
        match event:
            case (
                SimulatorEvent.PAYMENT_AUTHORIZED
                | SimulatorEvent.PAYMENT_CAPTURED
                | SimulatorEvent.PAYMENT_DECLINED
                | SimulatorEvent.PAYMENT_VOIDED
                | SimulatorEvent.PAYMENT_REQUIRES_ACTION
            ):
                return payment_from_json(body)
            case SimulatorEvent.REFUND_SUCCEEDED | SimulatorEvent.REFUND_FAILED:
                return refund_from_json(body)
            case _:
                assert_never(event)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed {event} event: {error}") from None
