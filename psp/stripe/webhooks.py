"""Stripe's webhooks in: the signature checked by the SDK's own helper
(`Stripe-Signature: t=…,v1=…`, HMAC-SHA256 over "t.body", 300 s tolerance),
against each secret valid now (two during a rotation), and the event read as
news of a payment or a refund. The dedup key is Stripe's event id (`evt_…`):
Stripe sends duplicates and keeps no order, so what an event says goes
through the same forward-only writes as any other answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import stripe

from psp.protocol import PspEvent
from psp.protocol import VerifiedWebhook
from psp.protocol import WebhookRejected
from psp.stripe.mapping import PAYMENT_ID_KEY
from psp.stripe.mapping import REFUND_ID_KEY
from psp.stripe.mapping import payment_from_intent
from psp.stripe.mapping import refund_from_stripe

SIGNATURE_HEADER = "stripe-signature"
# Events whose object is a Refund. (`charge.refunded` carries the charge,
# without our refund id; Stripe sends a refund event beside it.)
_REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


def verify(
    body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, tolerance: int
) -> VerifiedWebhook:
    """WebhookRejected unless one of `secrets` signed `body` within `tolerance` seconds."""
    header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not header:
        raise WebhookRejected("no Stripe-Signature header")
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(body, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError:
            continue
        except (ValueError, AttributeError, TypeError):  # signed, but not a JSON object
            raise WebhookRejected("the signed body is not a JSON event") from None
        return _verified(body)
    # Say nothing of which part failed: a forger learns nothing from the answer.
    raise WebhookRejected("the Stripe signature is wrong or stale")


def _verified(body: bytes) -> VerifiedWebhook:
    """The signed event as received (the SDK's Event is not kept: the worker
    reads the payload the gateway stored)."""
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise WebhookRejected("the signed body is not a JSON event")
    event_id, event_type = payload.get("id"), payload.get("type")
    if not (isinstance(event_id, str) and event_id.startswith("evt_")):
        raise WebhookRejected("the event has no Stripe event id")
    if not isinstance(event_type, str):
        raise WebhookRejected("the event has no type")
    return VerifiedWebhook(event_id=event_id, event_type=event_type, payload=payload)


def parse(payload: Mapping[str, Any]) -> PspEvent | None:
    """What a verified event says of one of our payments or refunds; None
    for an event we do not act on, or about an object that is not ours;
    ValueError when malformed (it is untrusted input all the same)."""
    event_type, data = payload.get("type"), payload.get("data")
    found = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_type, str) or not isinstance(found, Mapping):
        raise ValueError("a Stripe event has a type and its object in data.object")
    metadata = found.get("metadata")
    try:
        if event_type.startswith("payment_intent."):
            if not isinstance(metadata, Mapping) or PAYMENT_ID_KEY not in metadata:
                return None
            return payment_from_intent(found)
        if event_type in _REFUND_EVENTS:
            if not isinstance(metadata, Mapping) or REFUND_ID_KEY not in metadata:
                return None
            return refund_from_stripe(found)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed {event_type} event: {error!r}") from None
    return None
