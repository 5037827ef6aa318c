"""Where localstripe (the Stripe emulator of the tests and of `paystream up
--psp stripe`) departs from Stripe's documented API, and what the connector
does about each, in one place. The connector follows Stripe's documentation;
`StripeConfig.localstripe` turns on the adjustments below, and nothing else
changes.

- It refuses parameters it does not know: `allowed_payment_method_types`
  (Stripe needs it, or a `return_url`, to confirm with a card without
  redirect-based methods) and `return_url`. Both are left out, so 3-D Secure
  gives `requires_action` with no page to redirect to (`use_stripe_sdk`); it
  is completed with localstripe's own `POST
  /v1/payment_intents/{id}/_authenticate`.
- It refuses every list filter (`created`): the settlement report reads
  balance transactions from the newest and stops past the day
  (`settlement.balance_transactions`).

Handled where they arise, with no switch, because Stripe's own answers are
read the same way:

- No search endpoint: `GET /v1/payment_intents/search` is a 404, which an
  inquiry reads as "not found" after the recent intents were listed. The
  Stripe proxy of the local stack answers it (stack/stripe_proxy.py).
- Lists of PaymentIntents come oldest first (Stripe's are newest first): an
  inquiry reads up to `inquiry_scan_limit` of them either way (the drill
  sets it to 0 and asks the proxy's search alone).
- No `amount_capturable`, `amount_received`, `amount_captured`: amounts are
  read from the charge (`mapping.payment_from_intent`).
- A partial capture is booked as a charge of the full amount and a refund of
  the rest (`mapping.released_at_capture`); the settlement report writes it
  Stripe's way.
- A card error carries no `payment_intent` and no `decline_code`: the decline
  is read from the error (`mapping.declined_payment`), coded `card_declined`.
- It checks less than Stripe: a canceled PaymentIntent can still be
  captured, and refunds are not held to what is left to refund. The
  connector never asks either; the tests do not rely on the refusals.
- It ignores `Idempotency-Key`. Nothing here can make up for that: a retry
  of a write whose answer was lost charges again. The tests put a proxy in
  front of it that replays answers by key as Stripe documents
  (stack/stripe_proxy.py).
"""

from __future__ import annotations

from stripe.params import PaymentIntentCreateParams


def authorize_params(params: PaymentIntentCreateParams) -> PaymentIntentCreateParams:
    """A PaymentIntent's creation as localstripe takes it."""
    kept = params.copy()
    kept.pop("allowed_payment_method_types", None)
    kept.pop("return_url", None)
    return kept
