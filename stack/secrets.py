"""Secrets of a local stack, generated once and kept in `<data-dir>/secrets.json`
(mode 600), so the next `paystream up` on the same folder finds its data."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from payments.webhooks import new_webhook_secret

_WEBHOOK_SECRETS = ("psp_webhook_secret", "stripe_webhook_secret")
_NAMES = ("key_pepper", "psp_api_key", "postgres_password", "redis_password", *_WEBHOOK_SECRETS)


def _generate(name: str) -> str:
    return new_webhook_secret() if name in _WEBHOOK_SECRETS else secrets.token_hex(24)


def load_or_create(data_dir: Path) -> dict[str, str]:
    path = data_dir / "secrets.json"
    existing: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    values = {name: existing.get(name) or _generate(name) for name in _NAMES}
    if values != existing:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle, indent=2)
    return values
