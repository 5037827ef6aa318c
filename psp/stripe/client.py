"""How paystream reaches Stripe: its settings (`StripeConfig`), and the SDK's
client on an httpx transport with explicit connect and read timeouts and no
retries of its own (paystream's workers retry, under the same idempotency
key, asking first when an earlier try may have landed)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

import httpx
import stripe

STRIPE_API_BASE = "https://api.stripe.com"


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_key: str = field(repr=False)
    api_base: str = STRIPE_API_BASE
    # The endpoint's signing secret (whsec_…); during a rotation the one
    # before it still verifies, until `previous_webhook_secret_until` if set.
    webhook_secret: str = field(default="", repr=False)
    previous_webhook_secret: str = field(default="", repr=False)
    previous_webhook_secret_until: datetime | None = None
    # Stripe's libraries' default: a signature older than 5 minutes is refused.
    webhook_tolerance: int = 300
    # Connecting is fast on a healthy network; a PSP that takes longer is down.
    connect_timeout: float = 2.0
    # Card authorizations answer within seconds at p99, 3-D Secure lookups
    # included; Kill Bill gives its plugins 30 s. Past this we ask instead.
    read_timeout: float = 30.0
    # How many of the most recent objects an inquiry without Stripe's id
    # reads before it turns to search: ten pages. 0: search alone (the
    # drill's local Stripe, whose lists come oldest first: see departures).
    inquiry_scan_limit: int = 1_000
    # The API at api_base is localstripe (the local Stripe of the tests and
    # `paystream up --psp stripe`), which refuses parameters Stripe takes:
    # see `departures`.
    localstripe: bool = False

    def webhook_secrets(self, now: datetime) -> list[str]:
        """The secrets a webhook may be signed with now, current first."""
        secrets = [self.webhook_secret]
        until = self.previous_webhook_secret_until
        if self.previous_webhook_secret and (until is None or now < until):
            secrets.append(self.previous_webhook_secret)
        return [secret for secret in secrets if secret]


class HttpxTransport(stripe.HTTPXClient):
    """The SDK's httpx transport, sending its encoded form as `content`: the
    SDK (16.1) passes the string as `data`, which httpx deprecates (and
    will drop) for raw content, warning on every call."""

    def _get_request_args_kwargs(  # type: ignore[no-untyped-def]  # (untyped in the SDK)
        self, method, url, headers, post_data
    ):
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs["content"] = kwargs.pop("data", None) or None
        return args, kwargs


def stripe_client(config: StripeConfig) -> tuple[stripe.StripeClient, stripe.HTTPClient]:
    """The SDK's client on its httpx transport, with our timeouts and no
    retries of its own; and that transport, to close."""
    timeout = httpx.Timeout(
        connect=config.connect_timeout,
        read=config.read_timeout,
        write=config.read_timeout,
        pool=config.connect_timeout,
    )
    transport = HttpxTransport(timeout=timeout, allow_sync_methods=True)
    client = stripe.StripeClient(
        config.api_key,
        base_addresses={"api": config.api_base},
        http_client=transport,
        max_network_retries=0,
    )
    return client, transport
