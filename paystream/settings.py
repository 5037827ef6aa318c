"""Settings, read once from the environment (twelve-factor), in one place.

`DATABASE_URL` and `REDIS_URL` name the servers; everything else is
`PAYSTREAM_<NAME>`. A secret can also come from a file: set
`PAYSTREAM_<NAME>_FILE` to its path (Docker and Kubernetes secrets).
Defaults are the ones `paystream up` runs with.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_SECRET_FIELDS = ("key_pepper", "psp_api_key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYSTREAM_", extra="ignore", frozen=True)

    database_url: str = Field(
        "postgresql://paystream@127.0.0.1:54320/paystream",
        validation_alias=AliasChoices("DATABASE_URL", "PAYSTREAM_DATABASE_URL"),
    )
    redis_url: str = Field(
        "redis://127.0.0.1:63790/0",
        validation_alias=AliasChoices("REDIS_URL", "PAYSTREAM_REDIS_URL"),
    )

    # Secrets. The pepper keys the HMAC of stored API keys: changing it
    # invalidates every key. There is no default; `paystream up` generates them.
    key_pepper: SecretStr = SecretStr("")
    psp_api_key: SecretStr = SecretStr("")

    psp_url: str = "http://127.0.0.1:8001"
    psp_connect_timeout: float = 2.0
    psp_read_timeout: float = 10.0
    psp_ca_file: str | None = None

    idempotency_retention_seconds: int = 86_400
    db_pool_max: int = 16
    log_level: str = "INFO"

    # The simulator's own settings.
    simulator_book: str = ".paystream/psp-simulator.sqlite3"


def _secrets_from_files() -> dict[str, str]:
    values = {}
    for name in _SECRET_FIELDS:
        path = os.environ.get(f"PAYSTREAM_{name.upper()}_FILE")
        if path:
            values[name] = Path(path).read_text().strip()
    return values


@cache
def settings() -> Settings:
    return Settings(**_secrets_from_files())  # type: ignore[arg-type]


def require_secret(value: SecretStr, name: str) -> str:
    secret = value.get_secret_value()
    if not secret:
        raise SystemExit(
            f"PAYSTREAM_{name.upper()} (or PAYSTREAM_{name.upper()}_FILE) must be set;"
            " `paystream up` generates one for local use"
        )
    return secret
