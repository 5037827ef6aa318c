"""Which PSPs a deployment runs and how it routes among them, read from the
settings at start-up: a mistake stops the process saying what is wrong,
never a payment later."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from payments.routing import Route
from payments.routing import RoutingTable
from payments.webhooks import new_webhook_secret
from paystream.bootstrap import configure_actors
from paystream.connectors import build_connectors
from paystream.connectors import configured_routing
from paystream.settings import Settings
from psp.protocol import WebhookRejected
from psp.stripe.client import StripeConfig
from psp.stripe.connector import StripeConnector
from tests.support.callbacks import signed

TABLE = {"default": "simulator", "routes": [{"psp": "simulator", "currency": "EUR"}]}


def settings(**values: Any) -> Settings:
    return Settings(psp_api_key=SecretStr("psp-key"), **values)


def test_by_default_the_simulator_runs_and_takes_every_payment() -> None:
    assert build_connectors(settings()).names() == ["simulator"]
    assert configured_routing(settings()) == RoutingTable(default="simulator")


def test_a_table_is_read_inline_or_from_a_file(tmp_path: Path) -> None:
    expected = RoutingTable("simulator", (Route("simulator", currency="EUR"),))
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(TABLE))
    assert configured_routing(settings(routing=json.dumps(TABLE))) == expected
    assert configured_routing(settings(routing_file=str(path))) == expected


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"psps": "simulator,adyen"}, "PAYSTREAM_PSPS names adyen: paystream has no connector"),
        ({"psps": " , "}, "PAYSTREAM_PSPS names no PSP"),
        (
            {"routing": '{"default": "simulator", "routes": [{"psp": "stripe"}]}'},
            "PAYSTREAM_ROUTING: the routing table names PSPs that are not configured: stripe",
        ),
        ({"routing": "{not json"}, "PAYSTREAM_ROUTING: the routing table is not JSON"),
        ({"routing": "[]"}, "PAYSTREAM_ROUTING: the routing table is a JSON object"),
        ({"routing": "{}", "routing_file": "/x"}, "not both"),
        ({"routing_file": "/nonexistent/routing.json"}, "cannot be read"),
    ],
)
def test_a_table_or_psp_list_that_cannot_be_followed_stops_the_start_saying_why(
    values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(SystemExit, match=complaint):
        configured_routing(settings(**values))


CAPTURED = {"type": "payment.captured", "data": {"reference": "pay_1"}}


def test_the_simulators_connector_verifies_its_callbacks_with_both_secrets_during_a_rotation() -> (
    None
):
    current, previous, stranger = (new_webhook_secret() for _ in range(3))
    rotating = settings(
        psp_webhook_secret=SecretStr(current),
        psp_webhook_secret_previous=SecretStr(previous),
        psp_webhook_secret_previous_until=datetime.now(UTC) + timedelta(hours=1),
    )
    simulator = build_connectors(rotating)["simulator"]
    for secret in (current, previous):
        verified = simulator.verify_webhook(*signed(CAPTURED, secret=secret, webhook_id="msg_1"))
        assert (verified.event_id, verified.event_type, verified.reference) == (
            "msg_1",
            "payment.captured",
            "pay_1",
        )
    with pytest.raises(WebhookRejected):
        simulator.verify_webhook(*signed(CAPTURED, secret=stranger))
    without_secrets = build_connectors(settings())["simulator"]
    with pytest.raises(WebhookRejected):
        without_secrets.verify_webhook(*signed(CAPTURED, secret=current))


def test_stripe_runs_beside_the_simulator_with_its_connector_built_from_its_own_settings() -> None:
    until = datetime(2026, 12, 1, 12, 0)
    both = settings(
        psps="simulator,stripe",
        stripe_api_key=SecretStr("sk_test_123"),
        stripe_api_base="http://127.0.0.1:8420",
        stripe_webhook_secret=SecretStr("whsec_new"),
        stripe_webhook_secret_previous=SecretStr("whsec_old"),
        stripe_webhook_secret_previous_until=until,
        stripe_read_timeout=5.0,
        stripe_localstripe=True,
    )

    connectors = build_connectors(both)
    stripe = connectors["stripe"]

    assert connectors.names() == ["simulator", "stripe"]
    assert isinstance(stripe, StripeConnector)
    assert stripe.config == StripeConfig(
        api_key="sk_test_123",
        api_base="http://127.0.0.1:8420",
        webhook_secret="whsec_new",
        previous_webhook_secret="whsec_old",
        previous_webhook_secret_until=until.replace(tzinfo=UTC),
        read_timeout=5.0,
        localstripe=True,
    )
    stripe.close()


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (
            {"psps": "stripe"},
            "PAYSTREAM_PSPS names stripe: PAYSTREAM_STRIPE_API_KEY .* must be set",
        ),
        (
            {
                "psps": "stripe",
                "stripe_api_key": SecretStr("sk_test_123"),
                "stripe_webhook_secret_previous": SecretStr("whsec_old"),
            },
            "PAYSTREAM_STRIPE_WEBHOOK_SECRET_PREVIOUS needs _PREVIOUS_UNTIL",
        ),
    ],
)
def test_every_process_refuses_a_psp_without_its_settings_at_start_up(
    values: dict[str, Any], complaint: str
) -> None:
    # The gateway, the workers, the janitor, the relay and the webhook
    # sender all configure the actors first: none of them starts.
    with pytest.raises(SystemExit, match=complaint):
        configure_actors(settings(**values))
    with pytest.raises(SystemExit, match=complaint):
        configured_routing(settings(**values))
