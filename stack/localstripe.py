"""The local Stripe: `localstripe`, a stateful Stripe emulator (PyPI), run as
a process of its own on a free port, its webhooks registered to the gateway's
`/webhooks/stripe` and signed with a secret made for the run.

localstripe is GPL-3.0-or-later: it is run, never imported (this module only
asks whether it is installed). It comes with the dev dependencies and the
`stripe-local` extra.

Its state lives as long as its process: it is started `--from-scratch`,
because the only place it can keep its state is one file for the whole
machine (/tmp/localstripe.pickle), shared by every localstripe running here,
tests included. It listens on every interface (it takes no address).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from payments.webhooks import new_webhook_secret
from stack.ports import answers, wait_until
from stack.processes import ManagedProcess

# localstripe takes any secret key that starts with sk_.
LOCALSTRIPE_API_KEY = "sk_test_localstripe"
# The PaymentIntent, refund and charge events the connector reads.
WEBHOOK_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.amount_capturable_updated",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
)


class LocalStripeMissing(RuntimeError):
    """localstripe is not installed in this environment."""


def localstripe_installed() -> bool:
    return importlib.util.find_spec("localstripe") is not None


@dataclass
class LocalStripe:
    port: int
    log_path: Path
    # A CA to trust when it delivers webhooks (a gateway on the local TLS stack).
    ca_file: Path | None = None
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if not localstripe_installed():
            raise LocalStripeMissing(
                "localstripe is not installed: `uv sync` (it is a dev dependency) or "
                "install paystream[stripe-local]; or set STRIPE_API_KEY to use Stripe itself"
            )
        argv = [sys.executable, "-m", "localstripe", "--port", str(self.port), "--from-scratch"]
        # Its webhook client (aiohttp) trusts what OpenSSL's SSL_CERT_FILE names.
        env = {"SSL_CERT_FILE": str(self.ca_file)} if self.ca_file else {}
        self.process = ManagedProcess("localstripe", argv, self.log_path, env=env)
        self.process.start()
        wait_until(self._ready, timeout=timeout, what="localstripe")

    def _ready(self) -> bool:
        if self.process is not None and not self.process.running():
            raise RuntimeError(f"localstripe exited:\n{self.process.log_tail()}")
        # Any answer will do: it is up (unauthenticated calls are 401).
        return answers(f"{self.url}/v1/balance") is not None

    def register_webhook(
        self, name: str, url: str, secret: str, events: tuple[str, ...] | None = WEBHOOK_EVENTS
    ) -> None:
        """Send events to `url`, signed with `secret` (again under the same
        name replaces it). localstripe's own configuration endpoint."""
        form: dict[str, str | list[str]] = {"url": url, "secret": secret}
        if events is not None:
            form["events[]"] = list(events)
        httpx.post(f"{self.url}/_config/webhooks/{name}", data=form, timeout=5).raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class StripeForStack:
    """The Stripe a stack's processes talk to: `env` are their settings,
    `info` what stack.json says of it, `server` the local one if started."""

    env: dict[str, str]
    info: dict[str, str]
    server: LocalStripe | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def run_stripe_for_stack(
    *,
    port: int,
    gateway_url: str,
    logs: Path,
    ca_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> StripeForStack:
    """`paystream up --psp stripe`: Stripe itself when STRIPE_API_KEY is set
    (at STRIPE_API_BASE if set, its webhooks signed with
    STRIPE_WEBHOOK_SECRET), else localstripe started on `port` with its
    webhooks sent to `<gateway_url>/webhooks/stripe` (trusting `ca_file`,
    the local CA, when the gateway serves HTTPS)."""
    api_key = environ.get("STRIPE_API_KEY", "")
    if api_key:
        api_base = environ.get("STRIPE_API_BASE") or "https://api.stripe.com"
        env = _settings(api_key, api_base, environ.get("STRIPE_WEBHOOK_SECRET", ""), local=False)
        return StripeForStack(env=env, info={"stripeUrl": api_base})
    server = LocalStripe(port=port, log_path=logs / "localstripe.log", ca_file=ca_file)
    server.start()
    secret = new_webhook_secret()
    try:
        server.register_webhook("paystream", f"{gateway_url}/webhooks/stripe", secret)
    except BaseException:
        server.stop()
        raise
    env = _settings(LOCALSTRIPE_API_KEY, server.url, secret, local=True)
    return StripeForStack(env=env, info={"stripeUrl": server.url}, server=server)


def _settings(api_key: str, api_base: str, webhook_secret: str, *, local: bool) -> dict[str, str]:
    """The settings paystream's processes build their StripeConfig from."""
    return {
        "PAYSTREAM_STRIPE_API_KEY": api_key,
        "PAYSTREAM_STRIPE_API_BASE": api_base,
        "PAYSTREAM_STRIPE_WEBHOOK_SECRET": webhook_secret,
        "PAYSTREAM_STRIPE_LOCALSTRIPE": "true" if local else "false",
    }
