"""paystream's Grafana dashboard, built with Grafana's own Foundation SDK
(its typed models of the dashboard schema), written to `paystream.json`:

    uv run python deploy/grafana/dashboard.py

The suite checks that the JSON is what this builds, that it loads into the
SDK's dashboard model unchanged, and that every metric it queries is one a
running stack exports. The gauges read at scrape time are the same on every
gateway: they are aggregated with `max`, never summed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.builders import statetimeline
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUTPUT = Path(__file__).with_name("paystream.json")
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

# Panels are 12 columns of 24 wide, two to a row.
_WIDTH, _HEIGHT = 12, 8


def _query(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def graph(title: str, unit: str, description: str, *queries: tuple[str, str]) -> timeseries.Panel:
    """A time series of one or more queries, each (PromQL, legend)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(_WIDTH)
        .height(_HEIGHT)
        .legend(_legend())
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        panel.with_target(_query(expr, legend, ref))
    return panel


def rate(metric: str, by: str, selector: str = "") -> str:
    return f"sum by ({by}) (rate({metric}{selector}[$__rate_interval]))"


def quantile(q: float, histogram: str, by: str) -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) (rate({histogram}_bucket[$__rate_interval])))"
    )


def api() -> list[Any]:
    requests = "paystream_http_request_duration_seconds"
    return [
        dashboard.Row("API"),
        graph(
            "Requests by route",
            "reqps",
            "Answers per second, by route template and method.",
            (rate(f"{requests}_count", "route, method"), "{{method}} {{route}}"),
        ),
        graph(
            "Latency by route (p50, p99)",
            "s",
            "Time to answer, from the gateway's histogram.",
            (quantile(0.5, requests, "route"), "p50 {{route}}"),
            (quantile(0.99, requests, "route"), "p99 {{route}}"),
        ),
        graph(
            "Answers by status",
            "reqps",
            "Every answer by HTTP status: 5xx is ours (503 while Postgres is out of reach).",
            (rate(f"{requests}_count", "status"), "{{status}}"),
        ),
        stat.Panel()
        .title("5xx ratio (5 min)")
        .description("Share of answers that were 5xx; the alert fires above 1 %.")
        .datasource(DATASOURCE)
        .unit("percentunit")
        .span(_WIDTH)
        .height(_HEIGHT)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().values(False).calcs(["lastNotNull"]))
        .with_target(
            _query(
                f'sum(rate({requests}_count{{status=~"5.."}}[5m]))'
                f" / clamp_min(sum(rate({requests}_count[5m])), 1e-9)",
                "5xx",
                "A",
            )
        ),
    ]


def payments() -> list[Any]:
    return [
        dashboard.Row("Payments"),
        graph(
            "Payments reaching each status, by PSP",
            "ops",
            "Timeline events per second by the status reached and the payment's PSP.",
            (
                rate("paystream_payment_transitions_total", "status, psp"),
                "{{status}} at {{psp}}",
            ),
        ),
        graph(
            "Time to AUTHORIZED by PSP (p50, p99)",
            "s",
            "From a payment's creation to the PSP's first yes (AUTHORIZED or CAPTURED).",
            (quantile(0.5, "paystream_payment_time_to_authorized_seconds", "psp"), "p50 {{psp}}"),
            (quantile(0.99, "paystream_payment_time_to_authorized_seconds", "psp"), "p99 {{psp}}"),
        ),
        graph(
            "Payments waiting by PSP",
            "short",
            "PENDING at their PSP, and flagged for reconciliation (the janitor gave up asking).",
            ("max by (psp) (paystream_payments_pending)", "pending at {{psp}}"),
            ("max by (psp) (paystream_payments_flagged)", "flagged at {{psp}}"),
        ),
        graph(
            "Oldest PENDING payment by PSP",
            "s",
            "Age of each PSP's oldest PENDING payment; the alert fires past 15 minutes.",
            ("max by (psp) (paystream_payments_pending_oldest_seconds)", "{{psp}}"),
        ),
    ]


def psps() -> list[Any]:
    calls = "paystream_psp_call_duration_seconds"
    return [
        dashboard.Row("PSPs"),
        graph(
            "PSP calls by outcome",
            "ops",
            "answered, rejected, retryable, unknown (no answer: the payment waits), not_found.",
            (rate(f"{calls}_count", "psp, outcome"), "{{psp}} {{outcome}}"),
        ),
        graph(
            "PSP call latency (p99)",
            "s",
            "By PSP and operation.",
            (quantile(0.99, calls, "psp, operation"), "{{psp}} {{operation}}"),
        ),
        statetimeline.Panel()
        .title("Circuit state by PSP")
        .description("1 while a PSP's breaker is open: its payments wait, none fails.")
        .datasource(DATASOURCE)
        .span(_WIDTH)
        .height(_HEIGHT)
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .legend(_legend())
        .with_target(_query("max by (psp) (paystream_psp_circuit_open)", "{{psp}}", "A")),
        graph(
            "Circuit openings by PSP",
            "short",
            "Times a breaker opened: it stays open 5 s, and opens again while the PSP is down.",
            (
                "sum by (psp) (increase(paystream_psp_circuit_openings_total[$__rate_interval]))",
                "{{psp}}",
            ),
        ),
    ]


def pipeline() -> list[Any]:
    return [
        dashboard.Row("Queues and outbox"),
        graph(
            "Queue depth",
            "short",
            "Dramatiq messages by queue: ready, delayed for a retry, dead.",
            ("max by (queue, state) (paystream_queue_depth)", "{{queue}} {{state}}"),
        ),
        graph(
            "Worker messages by actor",
            "ops",
            "Messages the workers processed per second (Dramatiq's own metrics).",
            (rate("dramatiq_messages_total", "actor_name"), "{{actor_name}}"),
        ),
        graph(
            "Outbox lag",
            "s",
            "Age of the oldest event not yet on the event stream; the alert fires past a minute.",
            ("max(paystream_outbox_lag_seconds)", "lag"),
        ),
        graph(
            "Outbox events unpublished",
            "short",
            "Events written with their change and not yet published by the relay.",
            ("max(paystream_outbox_unpublished)", "unpublished"),
        ),
    ]


def books() -> list[Any]:
    return [
        dashboard.Row("Webhooks, reconciliation, audit"),
        graph(
            "Webhook delivery failures and dead letters",
            "short",
            "Failed merchant deliveries by reason, and deliveries given up (dead letters).",
            (
                "sum by (reason) (increase(paystream_webhook_delivery_failures_total"
                "[$__rate_interval]))",
                "{{reason}}",
            ),
            (
                "sum(increase(paystream_webhook_dead_letters_total[$__rate_interval]))",
                "dead letters",
            ),
        ),
        graph(
            "Reconciliation lines by result",
            "short",
            "Settlement lines classified: matched, or the kind of break.",
            (
                "sum by (result) (increase(paystream_reconciliation_lines_total"
                "[$__rate_interval]))",
                "{{result}}",
            ),
        ),
        graph(
            "Audit seal lag",
            "s",
            "Age of the oldest audit row the janitor has not chained yet.",
            ("max(paystream_audit_seal_lag_seconds)", "lag"),
        ),
        graph(
            "Audit rows unsealed",
            "short",
            "Audit rows waiting for the sealer.",
            ("max(paystream_audit_unsealed)", "unsealed"),
        ),
    ]


def build() -> dict[str, Any]:
    board = (
        dashboard.Dashboard("paystream")
        .uid("paystream")
        .description("A paystream deployment: API, payments, PSPs, queues, webhooks, books.")
        .tags(["paystream", "payments"])
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
    )
    panel_id = 1
    for section in (api(), payments(), psps(), pipeline(), books()):
        for panel in section:
            panel.id(panel_id)
            panel_id += 1
            if isinstance(panel, dashboard.Row):
                board.with_row(panel)
            else:
                board.with_panel(panel)
    built: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return built


def rendered() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(rendered())
    print(f"wrote {OUTPUT}")
