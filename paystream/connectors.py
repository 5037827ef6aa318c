"""Which PSPs this deployment runs, each connector built from its own
settings, and the routing table that chooses among them: wiring, read from
the settings at start-up, where a mistake stops the process with a clear
message rather than a payment later.

A PSP plugs in with one entry in `CONNECTOR_FACTORIES`: its name (the one in
`PAYSTREAM_PSPS`, the routing table, `/webhooks/{name}` and each payment's
`psp`), and a function that builds its connector from the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from payments.routing import RoutingTable, routing_table_from_json
from paystream.settings import Settings, psp_names, require_secret
from psp.protocol import Connector, Connectors
from psp.simulator.connector import SimulatorClientConfig, SimulatorConnector
from psp.standard_webhooks import WebhookSecret


def simulator_connector(settings: Settings) -> SimulatorConnector:
    return SimulatorConnector(simulator_client_config(settings))


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
        until = settings.psp_webhook_secret_previous_until
        if until is None:
            raise SystemExit("PAYSTREAM_PSP_WEBHOOK_SECRET_PREVIOUS needs _PREVIOUS_UNTIL")
        secrets.append(
            WebhookSecret(previous, until if until.tzinfo else until.replace(tzinfo=UTC))
        )
    return tuple(secrets)


# Every PSP paystream has a connector for, by name. Stripe's joins here once
# `psp/stripe/` is in: `"stripe": stripe_connector`, a function that builds its
# connector from its own settings (API key, API base URL, webhook secrets,
# timeouts), as `simulator_connector` does the simulator's.
CONNECTOR_FACTORIES: dict[str, Callable[[Settings], Connector]] = {
    "simulator": simulator_connector,
}


def configured_psps(settings: Settings) -> list[str]:
    """`PAYSTREAM_PSPS`, each a PSP paystream has a connector for."""
    names = psp_names(settings.psps)
    unknown = [name for name in names if name not in CONNECTOR_FACTORIES]
    if unknown:
        raise SystemExit(
            f"PAYSTREAM_PSPS names {', '.join(unknown)}: paystream has no connector of that"
            f" name (it has: {', '.join(sorted(CONNECTOR_FACTORIES))})"
        )
    return names


def build_connectors(settings: Settings) -> Connectors:
    """The connectors of every PSP this deployment runs."""
    return Connectors(
        {name: CONNECTOR_FACTORIES[name](settings) for name in configured_psps(settings)}
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
