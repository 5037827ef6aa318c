"""The Stripe side of `paystream up --psp stripe` (stack.localstripe): without
STRIPE_API_KEY a localstripe of its own, its webhooks signed for and sent to
the gateway; with it, Stripe itself and no process."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from payments.operations import OperationKind, psp_key
from psp.protocol import Answered, AuthorizeRequest, PspPaymentStatus
from psp.stripe.client import StripeConfig
from psp.stripe.connector import StripeConnector
from stack.localstripe import run_stripe_for_stack
from stack.ports import free_port, wait_until
from tests.support.localstripe import receiving_webhooks


def config_from(env: dict[str, str]) -> StripeConfig:
    """As a paystream process would build it from its settings."""
    return StripeConfig(
        api_key=env["PAYSTREAM_STRIPE_API_KEY"],
        api_base=env["PAYSTREAM_STRIPE_API_BASE"],
        webhook_secret=env["PAYSTREAM_STRIPE_WEBHOOK_SECRET"],
        localstripe=env["PAYSTREAM_STRIPE_LOCALSTRIPE"] == "true",
    )


def test_without_a_stripe_key_the_stack_runs_localstripe_whose_webhooks_reach_the_gateway(
    tmp_path: Path,
) -> None:
    with receiving_webhooks("/webhooks/stripe") as (url, received):
        local = run_stripe_for_stack(
            port=free_port(),
            gateway_url=url.removesuffix("/webhooks/stripe"),
            logs=tmp_path,
            environ={},
        )
        connector = StripeConnector(config_from(local.env))
        try:
            payment_id = f"pay_{secrets.token_hex(8)}"
            paid = connector.authorize(
                AuthorizeRequest(payment_id, 1500, "EUR", "pm_card_visa", capture=True),
                idempotency_key=psp_key(OperationKind.AUTHORIZE, payment_id),
            )

            def ours() -> tuple[bytes, dict[str, str]] | None:
                for body, headers in list(received):
                    metadata = json.loads(body)["data"]["object"].get("metadata") or {}
                    if metadata.get("paystream_payment_id") == payment_id:
                        return body, headers
                return None

            body, headers = wait_until(ours, timeout=10, what="the stack's Stripe webhook")
            verified = connector.verify_webhook(body, headers)
        finally:
            connector.close()
            local.stop()

    assert local.server is not None
    assert local.info == {"stripeUrl": local.server.url}
    assert isinstance(paid, Answered) and paid.value.status is PspPaymentStatus.CAPTURED
    assert verified.event_type == "payment_intent.succeeded"
    assert local.server.process is not None and not local.server.process.running()


def test_with_a_stripe_key_the_stack_talks_to_stripe_and_starts_nothing(tmp_path: Path) -> None:
    stripe_env = {"STRIPE_API_KEY": "sk_test_abc", "STRIPE_WEBHOOK_SECRET": "whsec_abc"}

    default = run_stripe_for_stack(
        port=free_port(), gateway_url="http://gw", logs=tmp_path, environ=stripe_env
    )
    elsewhere = run_stripe_for_stack(
        port=free_port(),
        gateway_url="http://gw",
        logs=tmp_path,
        environ={**stripe_env, "STRIPE_API_BASE": "https://stripe.internal"},
    )

    assert default.server is None and elsewhere.server is None
    assert default.info == {"stripeUrl": "https://api.stripe.com"}
    assert elsewhere.info == {"stripeUrl": "https://stripe.internal"}
    assert config_from(default.env) == StripeConfig(
        api_key="sk_test_abc", webhook_secret="whsec_abc", localstripe=False
    )
