"""Which PSPs this deployment runs, each connector built from its own
settings, and the routing table that chooses among them: wiring, read from
the settings at start-up, where a mistake stops the process with a clear
message rather than a payment later.

A PSP plugs in with one entry in `CONNECTOR_FACTORIES`: its name (the one in
`PAYSTREAM_PSPS`, the routing table, `/webhooks/{name}` and each payment's
`psp`), a function that reads its config from the settings, and its
connector's class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Generic
from typing import TypeVar

from payments.routing import RoutingTable
from payments.routing import routing_table_from_json
from paystream.settings import Settings
from paystream.settings import psp_names
from paystream.settings import require_secret
from psp.protocol import Connector
from psp.protocol import Connectors
from psp.simulator.connector import SimulatorClientConfig
from psp.simulator.connector import SimulatorConnector
from psp.standard_webhooks import WebhookSecret
from psp.stripe.client import StripeConfig
from psp.stripe.connector import StripeConnector

C = TypeVar("C")


def simulator_client_config(settings: Settings) -> SimulatorClientConfig:
    return SimulatorClientConfig(
        base_url=settings.psp_url,
        api_key=require_secret(settings.psp_api_key, "psp_api_key"),
        connect_timeout=settings.psp_connect_timeout,
        read_timeout=settings.psp_read_timeout,
        ca_file=settings.psp_ca_file,
        webhook_secrets=simulator_webhook_secrets(settings),
    )


def simulator_webhook_secrets(settings: Settings) -> tuple[WebhookSecret, ...]:
    """The simulator's signing secrets still valid: the current one, and
    during a rotation's grace period the previous one too. None: its
    callbacks are refused."""
    secrets = []
    if current := settings.psp_webhook_secret.get_secret_value():
        secrets.append(WebhookSecret(current))
    if previous := settings.psp_webhook_secret_previous.get_secret_value():
        until = _previous_until(
            settings.psp_webhook_secret_previous_until, "PAYSTREAM_PSP_WEBHOOK_SECRET"
        )
        secrets.append(WebhookSecret(previous, until))
    return tuple(secrets)


def stripe_config(settings: Settings) -> StripeConfig:
    """Stripe's: a secret key is required (`paystream up --psp stripe` gives
    localstripe's, or STRIPE_API_KEY's); without a webhook secret its
    webhooks are refused."""
    previous = settings.stripe_webhook_secret_previous.get_secret_value()
    return StripeConfig(
        api_key=require_secret(settings.stripe_api_key, "stripe_api_key"),
        api_base=settings.stripe_api_base,
        webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
        previous_webhook_secret=previous,
        previous_webhook_secret_until=_previous_until(
            settings.stripe_webhook_secret_previous_until, "PAYSTREAM_STRIPE_WEBHOOK_SECRET"
        )
        if previous
        else None,
        connect_timeout=settings.stripe_connect_timeout,
        read_timeout=settings.stripe_read_timeout,
        localstripe=settings.stripe_localstripe,
        inquiry_scan_limit=settings.stripe_inquiry_scan_limit,
    )


def _previous_until(until: datetime | None, setting: str) -> datetime:
    """When a rotated-out secret stops verifying: it must be said (UTC unless
    the time says otherwise)."""
    if until is None:
        raise SystemExit(f"{setting}_PREVIOUS needs _PREVIOUS_UNTIL")
    return until if until.tzinfo else until.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ConnectorFactory(Generic[C]):
    """How a PSP's connector is made: its config read from the settings
    (SystemExit when they are missing or wrong), then the connector."""

    config: Callable[[Settings], C]
    connector: Callable[[C], Connector]

    def build(self, settings: Settings) -> Connector:
        return self.connector(self.config(settings))


# Every PSP paystream has a connector for, by name.
CONNECTOR_FACTORIES: dict[str, ConnectorFactory[Any]] = {
    "simulator": ConnectorFactory(simulator_client_config, SimulatorConnector),
    "stripe": ConnectorFactory(stripe_config, StripeConnector),
}


def configured_psps(settings: Settings) -> list[str]:
    """`PAYSTREAM_PSPS`, each a PSP paystream has a connector for, with
    its settings (SystemExit saying what is missing: at start-up, not at a
    payment)."""
    names = psp_names(settings.psps)
    unknown = [name for name in names if name not in CONNECTOR_FACTORIES]
    if unknown:
        raise SystemExit(
            f"PAYSTREAM_PSPS names {', '.join(unknown)}: paystream has no connector of that"
            f" name (it has: {', '.join(sorted(CONNECTOR_FACTORIES))})"
        )
    for name in names:
        try:
            CONNECTOR_FACTORIES[name].config(settings)
        except SystemExit as missing:
            raise SystemExit(f"PAYSTREAM_PSPS names {name}: {missing}") from None
    return names


def build_connectors(settings: Settings) -> Connectors:
    """The connectors of every PSP this deployment runs."""
    return Connectors(
        {name: CONNECTOR_FACTORIES[name].build(settings) for name in configured_psps(settings)}
    )


def configured_routing(settings: Settings) -> RoutingTable:
    """The routing table of the settings (`PAYSTREAM_ROUTING`, or the file
    `PAYSTREAM_ROUTING_FILE`), every PSP it names one this deployment runs;
    without one, everything goes to the first PSP of `PAYSTREAM_PSPS`."""
    names = configured_psps(settings)
    if settings.routing and settings.routing_file:
        raise SystemExit("set PAYSTREAM_ROUTING or PAYSTREAM_ROUTING_FILE, not both")
    where, text = "PAYSTREAM_ROUTING", settings.routing
    if settings.routing_file:
        where = f"PAYSTREAM_ROUTING_FILE ({settings.routing_file})"
        try:
            text = Path(settings.routing_file).read_text()
        except OSError as error:
            raise SystemExit(f"{where} cannot be read: {error.strerror}") from None
    if not text:
        return RoutingTable(default=names[0])
    try:
        return routing_table_from_json(text, known=names)
    except ValueError as error:
        raise SystemExit(f"{where}: {error}") from None
