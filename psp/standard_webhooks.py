"""Callbacks signed the Standard Webhooks way (webhook-id, webhook-timestamp,
webhook-signature; HMAC-SHA256 over "id.timestamp.body"; ±5 minutes;
constant-time compare), checked by the official `standardwebhooks` library
against every secret of the PSP still valid: two during a rotation's grace."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError

from psp.protocol import WebhookRejected

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """A PSP's signing secret (`whsec_…`); a rotated-out one retires at a time."""

    secret: str
    retires_at: datetime | None = None


def verify_signature(
    secrets: Sequence[WebhookSecret], body: bytes, headers: Mapping[str, str], now: datetime
) -> str:
    """The callback's webhook-id, once one secret still valid at `now` signs
    it; WebhookRejected otherwise (no secret at all included). Why is not
    said: a forger learns nothing from the answer."""
    signed = {name: headers.get(name, "") for name in SIGNATURE_HEADERS}
    for secret in secrets:
        if secret.retires_at is not None and secret.retires_at <= now:
            continue
        try:
            Webhook(secret.secret).verify(body, signed, json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error):
            continue
        return signed["webhook-id"]
    raise WebhookRejected("the webhook signature is missing, wrong or stale")
