"""PSP webhooks in: `POST /webhooks/{provider}`, where the provider is a
connector's name (404 for any other).

The provider's connector verifies the callback's signature over the raw body
(the simulator's: Standard Webhooks, with every secret still valid during a
rotation) and reads it as an event; a bad, missing or stale signature is 401
and nothing is stored, a signed body that is no event of that PSP's is 400.

A valid callback is stored in the inbox and acknowledged at once; an actor
applies it, read by the same connector. A duplicate (the provider and its
event id) is 200 with no effect: Redis `SET NX` is the fast path, the inbox's
unique constraint the backstop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from gateway.endpoint import Answer
from gateway.endpoint import Call
from gateway.endpoint import Endpoint
from gateway.http import read_body
from gateway.http import refuse_forbidden_content
from gateway.problems import Problem
from gateway.problems import not_found
from gateway.schemas.webhooks import WebhookReceipt
from psp.protocol import Connector
from psp.protocol import UnknownConnector
from psp.protocol import VerifiedWebhook
from psp.protocol import WebhookRejected
from store.audit import acting
from store.webhook_inbox import insert_inbox

logger = logging.getLogger("paystream.gateway.psp_webhooks")

_SEEN, _IN_FLIGHT = b"D", b"L"
# A callback being stored right now: long enough for one insert and commit.
_IN_FLIGHT_MS = 30_000


async def receive_psp_webhook(call: Call[None, None]) -> Answer:
    """Public, signed instead: it reads its raw body itself, for the
    connector to check the signature over it before anything reads it."""
    services, request = call.services, call.request
    provider = call.path["provider"]
    try:
        connector = services.config.connectors[provider]
    except UnknownConnector:
        raise not_found("webhook provider") from None
    body = await read_body(request, services.config.max_body_bytes)
    webhook = _verified(connector, body, request.headers)
    claims = services.claims
    dedup_key, token = f"whin:{provider}:{webhook.event_id}", _IN_FLIGHT + os.urandom(8)
    held = await claims.claim(dedup_key, token, _IN_FLIGHT_MS)
    if held is not None:
        if held.startswith(_SEEN):
            return receipt(duplicate=True)
        raise Problem(
            "webhook_in_flight",
            "this webhook-id is being stored right now",
            headers={"Retry-After": "1"},
        )
    try:
        async with acting(services.pool, f"psp:{provider}", call.request_id) as conn:
            inbox_id = await insert_inbox(
                conn,
                provider=provider,
                webhook_id=webhook.event_id,
                event_type=webhook.event_type,
                reference=webhook.reference,
                payload=webhook.payload,
            )
    except BaseException:
        await claims.release(dedup_key, token)
        raise
    await claims.settle(dedup_key, _SEEN, services.config.webhook_dedup_ms)
    if inbox_id is None:  # Redis had forgotten; Postgres had not
        return receipt(duplicate=True)
    await services.work.nudge_webhook(inbox_id)
    return receipt(duplicate=False)


def _verified(connector: Connector, body: bytes, headers: Mapping[str, str]) -> VerifiedWebhook:
    """The connector's verdict, as problems: a signature that does not hold
    is 401 (saying nothing of why: a forger learns nothing from the answer);
    a signed body that is no event, or carries a card number, is 400."""
    try:
        webhook = connector.verify_webhook(body, headers)
    except WebhookRejected:
        raise Problem(
            "invalid_signature", "the webhook signature is missing, wrong or stale"
        ) from None
    except ValueError as error:
        raise Problem("validation_error", f"the webhook cannot be read: {error}") from None
    try:
        refuse_forbidden_content(webhook.payload)
    except Problem as problem:
        if problem.code == "raw_card_data_forbidden":
            logger.error("a PSP webhook carried what looks like a card number; refused, not stored")
        raise
    return webhook


def receipt(*, duplicate: bool) -> dict[str, Any]:
    """The acknowledgement a PSP gets: a duplicate is acknowledged, and ignored."""
    return {"received": True, "duplicate": duplicate}


ENDPOINTS = (
    Endpoint(
        "POST",
        "/webhooks/{provider}",
        receive_psp_webhook,
        "Receive a PSP webhook",
        "webhooks",
        response=WebhookReceipt,
        problems=(
            "not_found",
            "invalid_signature",
            "webhook_in_flight",
            "validation_error",
            "payload_too_large",
            "raw_card_data_forbidden",
            "service_unavailable",
        ),
        security="webhook-signature",
    ),
)
