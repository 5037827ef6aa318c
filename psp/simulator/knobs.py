"""The simulator's knobs on its admin API (GET|PATCH /_admin/faults): their
camelCase names there, changing them all or none, describing them with what
the faults have done so far, and the fault knobs it starts with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import TypeAdapter
from pydantic.alias_generators import to_camel

from psp.simulator.faults import Fate
from psp.simulator.faults import FaultSettings
from psp.simulator.faults import outage_windows
from psp.simulator.service import Simulator
from psp.simulator.webhooks import WebhookKnobs

# Knob names on the admin API (camelCase, like the rest of the API) and in FaultSettings.
KNOBS = {
    "latencyMs": "latency_ms",
    "jitterMs": "jitter_ms",
    "errorRate": "error_rate",
    "timeoutRate": "timeout_rate",
    "lostResponseRate": "lost_response_rate",
    "hangMs": "hang_ms",
    "seed": "seed",
    "outages": "outages",
    "webhookOnlyRate": "webhook_only_rate",
    "webhookOnlyHoldMs": "webhook_only_hold_ms",
    "silentRate": "silent_rate",
    "silentHoldMs": "silent_hold_ms",
}
SETTLEMENT_KNOBS = {
    "settlementMissingRows": "missing_rows",
    "settlementExtraRows": "extra_rows",
    "settlementAmountOff": "amount_off",
    "settlementCurrencyOff": "currency_off",
    "settlementDuplicateRows": "duplicate_rows",
    "chargebackRate": "chargeback_rate",
}
WEBHOOK_KNOBS = {
    "webhookUrl": "url",
    "webhookDelayMs": "delay_ms",
    "webhookDuplicateRate": "duplicate_rate",
    "webhookReorderRate": "reorder_rate",
}
# Write-only: set by PATCH, never shown.
WEBHOOK_SECRET_KNOB = "webhookSecret"  # noqa: S105  (a knob name, not a secret)
KNOWN = {*KNOBS, *WEBHOOK_KNOBS, *SETTLEMENT_KNOBS, WEBHOOK_SECRET_KNOB}
# The knobs a simulator can start with: its faults (where its webhooks go is a
# setting of its own).
START_KNOBS = {*KNOBS, *(name for name in WEBHOOK_KNOBS if name != "webhookUrl")}


def change_knobs(sim: Simulator, changes: dict[str, Any]) -> None:
    """Every change or none: each group is validated before any is applied."""
    fault_changes = {KNOBS[name]: value for name, value in changes.items() if name in KNOBS}
    hook_changes = {WEBHOOK_KNOBS[n]: value for n, value in changes.items() if n in WEBHOOK_KNOBS}
    if WEBHOOK_SECRET_KNOB in changes:
        hook_changes["secret"] = str(changes[WEBHOOK_SECRET_KNOB])
    settlement_changes = {
        SETTLEMENT_KNOBS[n]: value for n, value in changes.items() if n in SETTLEMENT_KNOBS
    }
    knobs = replace(sim.webhooks.knobs, **hook_changes)
    knobs.validate()
    settlement = replace(sim.settlement, **settlement_changes)
    settlement.validate()
    sim.faults.update(fault_changes)  # validates; raises before anything changes
    sim.webhooks.knobs = knobs
    sim.settlement = settlement
    if "seed" in fault_changes:
        sim.webhooks.reseed(fault_changes["seed"])
        sim.settlement.seed = fault_changes["seed"] or 0


def describe_knobs(sim: Simulator) -> dict[str, Any]:
    """Every knob but the secret, how often each fate was drawn, and what the
    webhook sender did."""
    described = sim.faults.describe()
    knobs = {camel: described[snake] for camel, snake in KNOBS.items()}
    hooks = {camel: getattr(sim.webhooks.knobs, snake) for camel, snake in WEBHOOK_KNOBS.items()}
    hooks |= {camel: getattr(sim.settlement, snake) for camel, snake in SETTLEMENT_KNOBS.items()}
    drawn = {fate.value: sim.faults.drawn[fate] for fate in Fate}
    sender = sim.webhooks
    webhooks = {
        "sent": sender.sent,
        "duplicated": sender.duplicated,
        "reordered": sender.reordered,
    }
    return {**knobs, **hooks, "drawn": drawn, "webhooks": webhooks}


def knobs_at_start(values: Mapping[str, str]) -> tuple[FaultSettings, WebhookKnobs]:
    """The fault knobs a simulator starts with, from text, each named as the
    admin API names it but in snake case (`timeout_rate` for timeoutRate, as
    PAYSTREAM_SIM_TIMEOUT_RATE sets it); `outages` as STARTS_IN:LASTS seconds
    from now, separated by commas or spaces. ValueError for a knob it does not
    have, or a value it does not take."""
    named = {to_camel(name): value for name, value in values.items()}
    if unknown := sorted(name for name in values if to_camel(name) not in START_KNOBS):
        raise ValueError(f"the simulator has no fault knob named {', '.join(unknown)}")
    faults: dict[str, Any] = {KNOBS[name]: value for name, value in named.items() if name in KNOBS}
    if "outages" in faults:
        faults["outages"] = outage_windows(faults["outages"].split())
    hooks = {WEBHOOK_KNOBS[name]: value for name, value in named.items() if name in WEBHOOK_KNOBS}
    webhooks = TypeAdapter(WebhookKnobs).validate_python(hooks)
    webhooks.validate()
    return TypeAdapter(FaultSettings).validate_python(faults), webhooks
