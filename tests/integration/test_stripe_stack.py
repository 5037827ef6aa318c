"""The Stripe side of `paystream up --psp stripe` (stack.psps.local_stripe):
with STRIPE_API_KEY, Stripe itself and nothing run here; without it,
localstripe behind the Stripe proxy, its webhooks signed for the gateway.
tests/e2e/test_stripe_up.py runs the whole stack on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from paystream.connectors import stripe_config
from paystream.settings import Settings
from psp.stripe.client import StripeConfig
from stack.psps import LocalPsp
from stack.psps import Surroundings
from stack.psps import local_stripe

SECRETS = {"stripe_webhook_secret": "whsec_local"}


def around(tmp_path: Path) -> Surroundings:
    return Surroundings(
        data_dir=tmp_path,
        scheme="http",
        gateway_url="http://127.0.0.1:8000",
        secrets=SECRETS,
        tls=None,
        ports={"--simulator-port": 8001, "--stripe-port": 8002},
    )


def config_of(psp: LocalPsp, monkeypatch: pytest.MonkeyPatch) -> StripeConfig:
    """As a paystream process builds it from the settings the stack gives it."""
    with monkeypatch.context() as environment:
        for name, value in psp.env.items():
            environment.setenv(name, value)
        return stripe_config(Settings())


def test_with_a_stripe_key_the_stack_talks_to_stripe_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stripe_env = {"STRIPE_API_KEY": "sk_test_abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc"}

    default = local_stripe(around(tmp_path), stripe_env)
    elsewhere = local_stripe(
        around(tmp_path), {**stripe_env, "STRIPE_API_BASE": "https://stripe.internal"}
    )

    assert default.processes == () and elsewhere.processes == ()
    assert default.info == {"stripeUrl": "https://api.stripe.com"}
    assert elsewhere.info == {"stripeUrl": "https://stripe.internal"}
    assert config_of(default, monkeypatch) == StripeConfig(
        api_key="sk_test_abc", webhook_secret="whsec_abc", localstripe=False
    )
    assert config_of(elsewhere, monkeypatch).api_base == "https://stripe.internal"


def test_without_a_stripe_key_the_stack_runs_localstripe_behind_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = local_stripe(around(tmp_path), {})

    assert [name for name, _ in local.processes] == ["localstripe", "stripe-proxy"]
    assert local.url == local.info["stripeUrl"] == "http://127.0.0.1:8002"
    assert local.info["localstripeUrl"] != local.url
    assert local.health_url == "http://127.0.0.1:8002/_proxy/healthz"
    assert local.ready is not None
    config = config_of(local, monkeypatch)
    assert (config.api_base, config.webhook_secret, config.localstripe) == (
        "http://127.0.0.1:8002",
        "whsec_local",
        True,
    )
