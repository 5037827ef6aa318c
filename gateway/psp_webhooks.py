"""PSP webhooks in: `POST /webhooks/{provider}`.

Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature;
HMAC-SHA256 over "id.timestamp.body"; ±5 minutes; constant-time compare), by
the official `standardwebhooks` library, against every secret of the provider
that is still valid (two during a rotation's grace period). A bad, missing or
stale signature is 401 and nothing is stored.

A valid callback is stored in the inbox and acknowledged at once; an actor
applies it. A duplicate webhook-id is 200 with no effect: Redis `SET NX` is the
fast path, the inbox's unique constraint the backstop.
"""

from __future__ import annotations

import binascii
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from gateway.endpoint import Answer, Call, Endpoint
from gateway.http import decode_json, read_body, refuse_forbidden_content
from gateway.problems import Problem, not_found
from gateway.schemas.webhooks import WebhookReceipt
from gateway.types import WebhookSecret
from store.audit import acting
from store.webhook_inbox import insert_inbox

logger = logging.getLogger("paystream.gateway.psp_webhooks")

_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_SEEN, _IN_FLIGHT = b"D", b"L"
# A callback being stored right now: long enough for one insert and commit.
_IN_FLIGHT_MS = 30_000


def valid_secrets(secrets: Sequence[WebhookSecret], now: datetime) -> list[str]:
    return [s.secret for s in secrets if s.retires_at is None or s.retires_at > now]


def verify(secrets: Sequence[str], body: bytes, headers: dict[str, str]) -> bool:
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error):
            continue
        return True
    return False


async def receive_psp_webhook(call: Call[None, None]) -> Answer:
    """Public, signed instead: it reads its raw body itself, to check the
    signature over it before anything reads it as JSON."""
    services, request = call.services, call.request
    provider = call.path["provider"]
    secrets = services.config.psp_webhook_secrets.get(provider)
    if not secrets:
        raise not_found("webhook provider")
    body = await read_body(request, services.config.max_body_bytes)
    headers = {name: request.headers.get(name, "") for name in _SIGNATURE_HEADERS}
    if not verify(valid_secrets(secrets, datetime.now(UTC)), body, headers):
        # Say nothing of why: a forger learns nothing from the answer.
        raise Problem("invalid_signature", "the webhook signature is missing, wrong or stale")
    event = _decode(body)
    webhook_id = headers["webhook-id"]
    claims = services.claims
    dedup_key, token = f"whin:{provider}:{webhook_id}", _IN_FLIGHT + os.urandom(8)
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
        actor = f"psp:{provider}"
        async with acting(services.pool, actor, call.request_id) as conn:
            inbox_id = await insert_inbox(
                conn,
                provider=provider,
                webhook_id=webhook_id,
                event_type=str(event["type"]),
                reference=_reference(event),
                payload=event,
            )
    except BaseException:
        await claims.release(dedup_key, token)
        raise
    await claims.settle(dedup_key, _SEEN, services.config.webhook_dedup_ms)
    if inbox_id is None:  # Redis had forgotten; Postgres had not
        return receipt(duplicate=True)
    await services.work.nudge_webhook(inbox_id)
    return receipt(duplicate=False)


def receipt(*, duplicate: bool) -> dict[str, Any]:
    """The acknowledgement a PSP gets: a duplicate is acknowledged, and ignored."""
    return {"received": True, "duplicate": duplicate}


def _decode(body: bytes) -> dict[str, Any]:
    event = decode_json(body)
    try:
        refuse_forbidden_content(event)
    except Problem as problem:
        if problem.code == "raw_card_data_forbidden":
            logger.error("a PSP webhook carried what looks like a card number; refused, not stored")
        raise
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise Problem("validation_error", "a webhook is a JSON object with a type")
    if not isinstance(event.get("data"), dict):
        raise Problem("validation_error", "a webhook carries its object in data")
    return event


def _reference(event: dict[str, Any]) -> str | None:
    reference = event["data"].get("reference")
    return reference if isinstance(reference, str) else None


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
