"""PSP callbacks for tests: signed the Standard Webhooks way, as the
simulator (or any PSP using the scheme) sends them, or stored straight into
the inbox as the gateway would after verifying one."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

import orjson
import psycopg
from standardwebhooks import Webhook


def signed(
    body: dict[str, Any], *, secret: str, webhook_id: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body as sent, and its headers, signed with `secret`."""
    raw = orjson.dumps(body)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, at, raw.decode())
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return raw, headers


def store_callback(
    db: psycopg.Connection, event_type: str, data: dict[str, Any], provider: str = "simulator"
) -> str:
    """A verified callback of `provider`'s in the inbox, pending; its inbox id."""
    inbox_id = f"whin_{uuid.uuid4().hex}"
    db.execute(
        "INSERT INTO webhook_inbox (id, provider, webhook_id, event_type, reference, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            inbox_id,
            provider,
            f"msg_{uuid.uuid4().hex}",
            event_type,
            data.get("reference"),
            psycopg.types.json.Jsonb({"type": event_type, "data": data}),
        ),
    )
    return inbox_id
