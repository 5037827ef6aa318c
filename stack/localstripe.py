"""The local Stripe: `localstripe`, a stateful Stripe emulator (PyPI), run as
a process of its own on a free port, and told where to send its webhooks
(signed with a secret made for the run). `stack.psps.local_stripe` runs it
for `paystream up --psp stripe`; the tests' fixtures run it as `LocalStripe`.

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
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from stack.ports import answers
from stack.ports import wait_until
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


MISSING = (
    "localstripe is not installed: `uv sync` (it is a dev dependency) or "
    "install paystream[stripe-local]; or set STRIPE_API_KEY to use Stripe itself"
)


class LocalStripeMissing(RuntimeError):
    """localstripe is not installed in this environment."""


def localstripe_installed() -> bool:
    return importlib.util.find_spec("localstripe") is not None


def localstripe_argv(port: int) -> list[str]:
    """localstripe on `port`, from scratch: its only place to keep state is
    one file for the whole machine."""
    return [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"]


def register_webhook(
    api: str,
    name: str,
    url: str,
    secret: str,
    events: tuple[str, ...] | None = WEBHOOK_EVENTS,
) -> None:
    """Have the localstripe at `api` send `events` to `url`, signed with
    `secret` (again under the same name replaces it): its own configuration
    endpoint."""
    form: dict[str, str | list[str]] = {"url": url, "secret": secret}
    if events is not None:
        form["events[]"] = list(events)
    httpx.post(f"{api}/_config/webhooks/{name}", data=form, timeout=5).raise_for_status()


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
            raise LocalStripeMissing(MISSING)
        # Its webhook client (aiohttp) trusts what OpenSSL's SSL_CERT_FILE names.
        env = {"SSL_CERT_FILE": str(self.ca_file)} if self.ca_file else {}
        argv = localstripe_argv(self.port)
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
        register_webhook(self.url, name, url, secret, events)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
