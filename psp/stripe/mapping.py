"""Stripe's answers read as paystream's: the one place that maps every
PaymentIntent status, refund status and error class of Stripe's API to the
connector protocol. A status or error Stripe may add later, or an answer that
cannot be read for sure, is UNKNOWN / Unknown: nothing is decided on a guess.

    PaymentIntent status                 PspPaymentStatus
    requires_capture                     AUTHORIZED
    succeeded                            CAPTURED
    canceled                             VOIDED
    requires_payment_method, attempted   DECLINED (last_payment_error's decline code)
    requires_payment_method, not yet     UNKNOWN
    requires_action                      REQUIRES_ACTION (next_action's redirect URL)
    processing, requires_confirmation    UNKNOWN (wait: a webhook or inquiry tells)
    anything else                        UNKNOWN

    Error (SDK class, HTTP status)        outcome
    CardError (402)                      an answer: the payment is declined
    InvalidRequestError (400, 404)       Rejected
    IdempotencyError                     Rejected
    RateLimitError (429)                 Retryable
    APIError 5xx, 409 (key in use)       Retryable
    AuthenticationError, PermissionError Retryable (our key is refused: nothing done)
    APIConnectionError, not connected    Retryable (the request never left)
    APIConnectionError, after sending    Unknown (timeout, dropped connection)
    anything else                        Unknown

Objects are read as plain dicts (the SDK's `to_dict()`, or a webhook's JSON)
so that API answers and webhooks go through the same functions. Both may come
from localstripe, whose objects lack some of Stripe's fields: where it matters
the fallback is named here (`released_at_capture`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from typing import Literal
from typing import TypeGuard
from typing import assert_never
from typing import get_args

import httpx
import stripe

from psp.protocol import PspPayment
from psp.protocol import PspPaymentStatus
from psp.protocol import PspRefund
from psp.protocol import PspRefundStatus
from psp.protocol import Rejected
from psp.protocol import Retryable
from psp.protocol import Unknown

# Our ids in Stripe's metadata: how an inquiry, a webhook and a balance
# transaction lead back to our payment or refund.
PAYMENT_ID_KEY = "paystream_payment_id"
REFUND_ID_KEY = "paystream_refund_id"

IntentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
]
RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]
INTENT_STATUSES: frozenset[str] = frozenset(get_args(IntentStatus))
REFUND_STATUSES: frozenset[str] = frozenset(get_args(RefundStatus))


def _is_intent_status(value: object) -> TypeGuard[IntentStatus]:
    return value in INTENT_STATUSES


def _is_refund_status(value: object) -> TypeGuard[RefundStatus]:
    return value in REFUND_STATUSES


def payment_status(status: object, *, attempted: bool) -> PspPaymentStatus:
    """`attempted`: the intent carries a `last_payment_error`, so a
    `requires_payment_method` is the end of a failed attempt, not a start."""
    if not _is_intent_status(status):
        return PspPaymentStatus.UNKNOWN
    match status:
        case "requires_capture":
            return PspPaymentStatus.AUTHORIZED
        case "succeeded":
            return PspPaymentStatus.CAPTURED
        case "canceled":
            return PspPaymentStatus.VOIDED
        case "requires_payment_method":
            return PspPaymentStatus.DECLINED if attempted else PspPaymentStatus.UNKNOWN
        case "requires_action":
            return PspPaymentStatus.REQUIRES_ACTION
        case "processing" | "requires_confirmation":
            return PspPaymentStatus.UNKNOWN
        case _:
            assert_never(status)


def refund_status(status: object) -> PspRefundStatus:
    if not _is_refund_status(status):
        return PspRefundStatus.UNKNOWN
    match status:
        case "succeeded":
            return PspRefundStatus.SUCCEEDED
        case "failed" | "canceled":
            return PspRefundStatus.FAILED
        case "pending" | "requires_action":
            return PspRefundStatus.UNKNOWN
        case _:
            assert_never(status)


# --- objects --------------------------------------------------------------------


def payment_from_intent(intent: Mapping[str, Any]) -> PspPayment:
    """A PaymentIntent as our view of the payment. KeyError, TypeError or
    ValueError when it is not ours or cannot be read (untrusted input)."""
    error = intent.get("last_payment_error")
    status = payment_status(intent["status"], attempted=isinstance(error, Mapping))
    amount = int(intent["amount"])
    charge = latest_charge(intent)
    released = released_at_capture(charge) if charge is not None else 0
    authorized = captured = 0
    if status is PspPaymentStatus.AUTHORIZED:
        # localstripe has no amount_capturable: until a capture, all of it is.
        authorized = int(intent.get("amount_capturable", amount))
    elif status is PspPaymentStatus.CAPTURED:
        authorized = amount
        captured = _captured_amount(intent, charge, released)
    refunded = int(charge.get("amount_refunded") or 0) - released if charge else 0
    declined = error if status is PspPaymentStatus.DECLINED and isinstance(error, Mapping) else None
    action = status is PspPaymentStatus.REQUIRES_ACTION
    return PspPayment(
        psp_reference=str(intent["id"]),
        reference=str(intent["metadata"][PAYMENT_ID_KEY]),
        status=status,
        amount=amount,
        currency=str(intent["currency"]).upper(),
        authorized_amount=authorized,
        captured_amount=captured,
        refunded_amount=refunded,
        decline_code=decline_code(declined) if declined else None,
        decline_message=_message(declined) if declined else None,
        next_action_url=redirect_url(intent) if action else None,
    )


def refund_from_stripe(refund: Mapping[str, Any]) -> PspRefund:
    """A Refund as our view of it; KeyError/TypeError/ValueError when not ours."""
    return PspRefund(
        psp_reference=str(refund["id"]),
        reference=str(refund["metadata"][REFUND_ID_KEY]),
        payment_psp_reference=str(refund["payment_intent"]),
        status=refund_status(refund.get("status")),
        amount=int(refund["amount"]),
        failure_code=refund.get("failure_reason"),
    )


def latest_charge(intent: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The intent's charge as an object, when the answer carries it (we ask
    for `latest_charge` expanded; older API versions, localstripe's among
    them, also list `charges`); None when only its id came."""
    charge = intent.get("latest_charge")
    if isinstance(charge, Mapping):
        return charge
    listed = (intent.get("charges") or {}).get("data") or []
    return listed[0] if listed and isinstance(listed[0], Mapping) else None


def released_at_capture(charge: Mapping[str, Any]) -> int:
    """What a partial capture released, where the PSP books it as a refund.

    Stripe books a partial capture as a charge of the captured amount and
    says so in `amount_captured`; nothing is refunded. localstripe books the
    charge at the full amount and a refund of the rest (no metadata, no
    payment_intent) and has no `amount_captured`. So: a charge with
    `amount_captured` released nothing we need to subtract; a charge without
    it released the refunds that are not ours (ours carry our refund id)."""
    if "amount_captured" in charge:
        return 0
    refunds = (charge.get("refunds") or {}).get("data") or []
    return sum(
        int(refund["amount"])
        for refund in refunds
        if REFUND_ID_KEY not in (refund.get("metadata") or {})
    )


def _captured_amount(
    intent: Mapping[str, Any], charge: Mapping[str, Any] | None, released: int
) -> int:
    if "amount_received" in intent:
        return int(intent["amount_received"])
    if charge is None:  # localstripe without the charge: the amount cannot be read
        raise ValueError("a captured PaymentIntent with neither amount_received nor its charge")
    return int(charge["amount"]) - released


def decline_code(error: Mapping[str, Any]) -> str:
    """Stripe's most precise word: the issuer's decline code (`insufficient_funds`)
    when it gave one, else the error code (`card_declined`,
    `payment_intent_authentication_failure`)."""
    return str(error.get("decline_code") or error.get("code") or "declined")


def _message(error: Mapping[str, Any]) -> str | None:
    message = error.get("message")
    return str(message) if message else None


def redirect_url(intent: Mapping[str, Any]) -> str | None:
    """Where the customer authenticates: `next_action.redirect_to_url.url`,
    which Stripe gives when the intent was confirmed with a `return_url`.
    Without one (`use_stripe_sdk`) the page is Stripe.js's to show: None."""
    action = intent.get("next_action") or {}
    url = (action.get("redirect_to_url") or {}).get("url")
    return str(url) if url else None


# --- errors -----------------------------------------------------------------------


class Failure(StrEnum):
    """What a failed call was, by Stripe's error class and what the transport saw."""

    CARD = "card"
    INVALID_REQUEST = "invalid_request"
    IDEMPOTENCY = "idempotency"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    KEY_REFUSED = "key_refused"
    NOT_SENT = "not_sent"
    NO_ANSWER = "no_answer"
    UNEXPECTED = "unexpected"


# Transport failures before any byte of the request left: surely not applied.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def failure_of(error: stripe.StripeError) -> Failure:
    match error:
        case stripe.CardError():
            return Failure.CARD
        case stripe.IdempotencyError():
            return Failure.IDEMPOTENCY
        case stripe.InvalidRequestError():
            return Failure.INVALID_REQUEST
        case stripe.RateLimitError():
            return Failure.RATE_LIMITED
        case stripe.AuthenticationError() | stripe.PermissionError():
            return Failure.KEY_REFUSED
        case stripe.APIConnectionError():
            # The SDK says "connection error" for both; the transport's own
            # exception (its cause) tells whether the request was sent.
            sent = not isinstance(error.__cause__, _NOT_SENT)
            return Failure.NO_ANSWER if sent else Failure.NOT_SENT
        case stripe.APIError() if _retryable_status(error.http_status):
            return Failure.SERVER
        case _:
            return Failure.UNEXPECTED


def _retryable_status(status: int | None) -> bool:
    # 409: Stripe is still running a request with this idempotency key.
    return status is not None and (status >= 500 or status == 409)


def call_outcome(error: stripe.StripeError) -> Rejected | Retryable | Unknown | None:
    """What a failed write means for the caller; None for a card error,
    which is an answer (the connector reads the decline from it)."""
    failure = failure_of(error)
    why = f"Stripe: {type(error).__name__} {error.http_status or ''}".rstrip()
    match failure:
        case Failure.CARD:
            return None
        case Failure.INVALID_REQUEST | Failure.IDEMPOTENCY:
            code = error.code or failure.value
            return Rejected(code, error.user_message or why)
        case Failure.RATE_LIMITED | Failure.SERVER | Failure.KEY_REFUSED | Failure.NOT_SENT:
            return Retryable(f"{why}: {failure.value}{_cause(error)}")
        case Failure.NO_ANSWER | Failure.UNEXPECTED:
            return Unknown(f"{why}: {failure.value}{_cause(error)}")
        case _:
            assert_never(failure)


def _cause(error: stripe.StripeError) -> str:
    """The transport's own exception behind a connection error, for the log."""
    cause = error.__cause__
    return f" ({type(cause).__name__}: {cause})" if cause is not None else ""


def declined_payment(
    error: stripe.CardError, *, reference: str, amount: int, currency: str
) -> PspPayment:
    """A card error as the decline it is. Stripe puts the PaymentIntent in the
    error (`payment_intent`); localstripe does not, so then the decline is
    built from the error and what we asked, its reference the charge's id."""
    body = error.error.to_dict() if error.error is not None else {}
    intent = body.get("payment_intent")
    if isinstance(intent, Mapping) and PAYMENT_ID_KEY in (intent.get("metadata") or {}):
        return payment_from_intent(intent)
    return PspPayment(
        psp_reference=str(body.get("charge") or ""),
        reference=reference,
        status=PspPaymentStatus.DECLINED,
        amount=amount,
        currency=currency,
        authorized_amount=0,
        captured_amount=0,
        refunded_amount=0,
        decline_code=decline_code(body),
        decline_message=error.user_message,
    )
