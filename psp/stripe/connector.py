"""The Stripe connector: PaymentIntents through Stripe's official SDK.

A payment is one PaymentIntent, created and confirmed at once with the
merchant's PaymentMethod (`methodToken`, `pm_…`), `capture_method` automatic
or manual, and our payment id in its metadata; capture (partial with
`amount_to_capture`), cancel and refunds act on it. Every write carries
Stripe's `Idempotency-Key`, our operation's own PSP key (`pay_…:authorize`)
under a prefix, so every retry by any worker is the same request to Stripe.

The SDK retries nothing (`max_network_retries=0`): paystream's workers retry
with backoff under the same key, asking first (an inquiry) when an earlier try
may have landed. Its httpx transport has explicit connect and read timeouts;
how a failure is read is `psp.stripe.mapping`'s.

Inquiries retrieve the PaymentIntent (or Refund) by Stripe's id when we have
it; without one (the answer that would have told us was lost) they look for
our id in metadata: first among the most recent objects (a list is consistent
at once, and a lost answer is recent), then, for a PaymentIntent, through
Stripe's search (which trails writes by up to a minute). An API without a
search endpoint (localstripe) answers 404 there, read as "not found".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TypeVar

import stripe
from stripe.params import PaymentIntentCaptureParams
from stripe.params import PaymentIntentCreateParams
from stripe.params import PaymentIntentListParams
from stripe.params import PaymentIntentSearchParams
from stripe.params import RefundCreateParams
from stripe.params import RefundListParams

from psp.observed import observed
from psp.observed import observing
from psp.protocol import Answered
from psp.protocol import AuthorizeRequest
from psp.protocol import CallResult
from psp.protocol import Connector
from psp.protocol import InquiryResult
from psp.protocol import NotFound
from psp.protocol import PspEvent
from psp.protocol import PspPayment
from psp.protocol import PspRefund
from psp.protocol import Rejected
from psp.protocol import ReportUnavailable
from psp.protocol import Retryable
from psp.protocol import Unknown
from psp.protocol import VerifiedWebhook
from psp.stripe import departures
from psp.stripe import settlement
from psp.stripe import webhooks
from psp.stripe.client import StripeConfig
from psp.stripe.client import stripe_client
from psp.stripe.mapping import PAYMENT_ID_KEY
from psp.stripe.mapping import REFUND_ID_KEY
from psp.stripe.mapping import Failure
from psp.stripe.mapping import call_outcome
from psp.stripe.mapping import declined_payment
from psp.stripe.mapping import failure_of
from psp.stripe.mapping import payment_from_intent
from psp.stripe.mapping import refund_from_stripe

T = TypeVar("T")

# Our keys among any other integration's on the same Stripe account.
IDEMPOTENCY_KEY_PREFIX = "paystream:"
# Every answer about a payment carries its charge, for the amounts captured
# and refunded (Stripe gives only the charge's id unless asked).
_WITH_CHARGE = ["latest_charge"]
_PAGE = 100  # Stripe's largest page


class StripeConnector:
    """A `psp.protocol.Connector` named "stripe"."""

    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self._client, self._transport = stripe_client(config)

    @property
    def name(self) -> str:
        return "stripe"

    def close(self) -> None:
        self._transport.close()  # type: ignore[no-untyped-call]  # (untyped in the SDK)

    # --- writes ---------------------------------------------------------------------

    def authorize(
        self, request: AuthorizeRequest, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        params: PaymentIntentCreateParams = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "payment_method": request.token,
            "confirm": True,
            "capture_method": "automatic" if request.capture else "manual",
            "metadata": {PAYMENT_ID_KEY: request.reference},
            "expand": _WITH_CHARGE,
        }
        if request.return_url:
            # Where Stripe sends the customer back after 3-D Secure; with
            # it, `requires_action` names a page to redirect them to.
            params["return_url"] = request.return_url
        else:
            # Cards only: with Stripe's default (whatever the Dashboard
            # enables, redirecting methods included) a confirm without a
            # return_url is refused.
            params["allowed_payment_method_types"] = ["card"]
        if self.config.localstripe:
            params = departures.authorize_params(params)

        def declined(error: stripe.CardError) -> PspPayment:
            return declined_payment(
                error, reference=request.reference, amount=request.amount, currency=request.currency
            )

        return self._write(
            "authorize",
            lambda options: self._client.v1.payment_intents.create(params, options),
            payment_from_intent,
            idempotency_key,
            on_card_error=declined,
        )

    def capture(
        self, psp_reference: str, amount: int, *, idempotency_key: str
    ) -> CallResult[PspPayment]:
        params: PaymentIntentCaptureParams = {"amount_to_capture": amount, "expand": _WITH_CHARGE}
        return self._write(
            "capture",
            lambda options: self._client.v1.payment_intents.capture(psp_reference, params, options),
            payment_from_intent,
            idempotency_key,
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> CallResult[PspPayment]:
        return self._write(
            "void",
            lambda options: self._client.v1.payment_intents.cancel(
                psp_reference, {"expand": _WITH_CHARGE}, options
            ),
            payment_from_intent,
            idempotency_key,
        )

    def refund(
        self, psp_reference: str, amount: int, reference: str, *, idempotency_key: str
    ) -> CallResult[PspRefund]:
        params: RefundCreateParams = {
            "payment_intent": psp_reference,
            "amount": amount,
            "metadata": {REFUND_ID_KEY: reference},
        }
        return self._write(
            "refund",
            lambda options: self._client.v1.refunds.create(params, options),
            refund_from_stripe,
            idempotency_key,
        )

    def _write(
        self,
        operation: str,
        send: Callable[[Any], stripe.StripeObject],
        read: Callable[[Mapping[str, Any]], T],
        idempotency_key: str,
        *,
        on_card_error: Callable[[stripe.CardError], T] | None = None,
    ) -> CallResult[T]:
        return observed(
            self.name,
            operation,
            lambda: _answer_of(
                lambda: send({"idempotency_key": IDEMPOTENCY_KEY_PREFIX + idempotency_key}),
                read,
                on_card_error,
            ),
        )

    # --- inquiries --------------------------------------------------------------------

    def find_payment(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspPayment]:
        intents = self._client.v1.payment_intents

        def ask() -> InquiryResult[PspPayment]:
            if psp_reference is not None:
                return _inquiry(
                    lambda: [intents.retrieve(psp_reference, {"expand": _WITH_CHARGE})],
                    PAYMENT_ID_KEY,
                    reference,
                    payment_from_intent,
                    by_id=True,
                )
            result = _inquiry(self._recent_intents, PAYMENT_ID_KEY, reference, payment_from_intent)
            if isinstance(result, NotFound) and _searchable(reference):
                result = _inquiry(
                    lambda: self._searched_intents(reference),
                    PAYMENT_ID_KEY,
                    reference,
                    payment_from_intent,
                )
            return result

        return observed(self.name, "find_payment", ask)

    def find_refund(
        self, reference: str, psp_reference: str | None = None
    ) -> InquiryResult[PspRefund]:
        refunds = self._client.v1.refunds

        def ask() -> InquiryResult[PspRefund]:
            if psp_reference is not None:
                return _inquiry(
                    lambda: [refunds.retrieve(psp_reference)],
                    REFUND_ID_KEY,
                    reference,
                    refund_from_stripe,
                    by_id=True,
                )
            # Stripe has no search for refunds: the recent ones are all there is.
            return _inquiry(self._recent_refunds, REFUND_ID_KEY, reference, refund_from_stripe)

        return observed(self.name, "find_refund", ask)

    def _recent_intents(self) -> Iterable[stripe.PaymentIntent]:
        if not self.config.inquiry_scan_limit:
            return []  # search alone
        params: PaymentIntentListParams = {"limit": _PAGE, "expand": ["data.latest_charge"]}
        page = self._client.v1.payment_intents.list(params)
        return itertools.islice(page.auto_paging_iter(), self.config.inquiry_scan_limit)

    def _recent_refunds(self) -> Iterable[stripe.Refund]:
        params: RefundListParams = {"limit": _PAGE}
        page = self._client.v1.refunds.list(params)
        return itertools.islice(page.auto_paging_iter(), self.config.inquiry_scan_limit)

    def _searched_intents(self, reference: str) -> Iterable[stripe.PaymentIntent]:
        """Stripe's search by our id in metadata. An API without search
        (localstripe) answers 404, which the inquiry reads as not found."""
        params: PaymentIntentSearchParams = {
            "query": f"metadata['{PAYMENT_ID_KEY}']:'{reference}'",
            "expand": ["data.latest_charge"],
        }
        return self._client.v1.payment_intents.search(params).data

    # --- webhooks and settlement -----------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> VerifiedWebhook:
        secrets = self.config.webhook_secrets(datetime.now(UTC))
        return webhooks.verify(body, headers, secrets, tolerance=self.config.webhook_tolerance)

    def parse_webhook(self, payload: dict[str, Any]) -> PspEvent | None:
        return webhooks.parse(payload)

    def settlement_report(self, batch: str) -> Iterator[bytes]:
        with observing(self.name, "settlement_report") as labels:
            try:
                yield from settlement.report(
                    self._client, batch, filters=not self.config.localstripe
                )
            except stripe.StripeError as error:
                labels["outcome"] = "unavailable"
                raise ReportUnavailable(f"Stripe: {type(error).__name__}: {error}") from None
            labels["outcome"] = "answered"


def _answer_of(
    send: Callable[[], stripe.StripeObject],
    read: Callable[[Mapping[str, Any]], T],
    on_card_error: Callable[[stripe.CardError], T] | None,
) -> CallResult[T]:
    try:
        try:
            answer = send()
        except stripe.StripeError as error:
            outcome = call_outcome(error)
            if outcome is not None:
                return outcome
            assert isinstance(error, stripe.CardError)
            if on_card_error is None:
                return Rejected(error.code or "card_error", error.user_message or "")
            return Answered(on_card_error(error))
        return Answered(read(answer.to_dict()))
    except (KeyError, TypeError, ValueError) as error:
        # It answered, but not in a way we can read: it may have taken effect.
        return Unknown(f"Stripe answered with an object that could not be read: {error!r}")


def _inquiry(
    candidates: Callable[[], Iterable[stripe.StripeObject]],
    key: str,
    reference: str,
    read: Callable[[Mapping[str, Any]], T],
    *,
    by_id: bool = False,
) -> InquiryResult[T]:
    """The first of `candidates` that carries our `reference` under `key`.
    `by_id`: the one candidate was retrieved by Stripe's id, so one that is
    not ours is a contradiction to report, not a miss."""
    try:
        for candidate in candidates():
            found = candidate.to_dict()
            if (found.get("metadata") or {}).get(key) == reference:
                return Answered(read(found))
            if by_id:
                return Unknown(f"Stripe's {found.get('id')} is not {reference}'s")
    except stripe.StripeError as error:
        return _inquiry_failure(error)
    except (KeyError, TypeError, ValueError) as error:
        return Unknown(f"Stripe answered with an object that could not be read: {error!r}")
    return NotFound()


def _inquiry_failure(error: stripe.StripeError) -> NotFound | Retryable | Unknown:
    failure = failure_of(error)
    if failure is Failure.INVALID_REQUEST and error.http_status == 404:
        return NotFound()
    outcome = call_outcome(error)
    if isinstance(outcome, Retryable):
        return outcome
    return Unknown(f"Stripe: {type(error).__name__} {error.http_status or ''}: {failure.value}")


def _searchable(reference: str) -> bool:
    """Our ids never need quoting in Stripe's search language; anything that
    would is not one of ours."""
    return reference.replace("_", "").replace("-", "").isalnum()


def _is_a_connector(connector: StripeConnector) -> Connector:
    """Never called: mypy holds the class to the protocol here."""
    return connector
