"""A bench run's results: the table printed, the JSON written, the chart drawn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _rate(figures: dict[str, Any]) -> str:
    return f"{figures['perSecond']:,.0f}/s"


def _latency(figures: dict[str, Any], p50: str = "p50Ms", p99: str = "p99Ms") -> str:
    return f"p50 {figures[p50]:.1f} ms, p99 {figures[p99]:.1f} ms"


def _cpu(per_unit: dict[str, float]) -> str:
    total = sum(per_unit.values())
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per_unit.items())
    return f"{total:.2f} ms: {parts}"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, paystream, ceiling or peer, ratio) for every figure of the run."""
    table: list[tuple[str, str, str, str]] = []
    for row in results.get("ingress", []):
        c = row["concurrency"]
        ours, bare, busy = row["paystream"], row["ceiling"], row["paystreamPipelineRunning"]
        table.append(
            (
                f"ingress POST /payments, c{c} (pipeline paused)",
                f"{_rate(ours)}; {_latency(ours)}",
                f"bare Starlette {_rate(bare)}; {_latency(bare)}",
                f"{row['ratio']:.2f}",
            )
        )
        if "cpuMsPerRequest" in ours:
            table.append((f"  CPU per request, c{c}", _cpu(ours["cpuMsPerRequest"]), "", ""))
        table.append(
            (
                f"ingress POST /payments, c{c} (pipeline running)",
                f"{_rate(busy)}; {_latency(busy)}",
                "",
                f"{busy['perSecond'] / bare['perSecond']:.2f}",
            )
        )
    if "endToEnd" in results:
        table += _end_to_end(results["endToEnd"])
    if "idempotency" in results:
        table += _idempotency(results["idempotency"])
    for recon in results.get("reconciliation", []):
        ours, duck = recon["paystream"], recon["duckdb"]
        table.append(
            (
                f"reconciliation, {recon['rows']:,} rows",
                f"{ours['rowsPerSecond']:,} rows/s, peak {ours['peakRssMb']:.0f} MB",
                f"DuckDB {duck['rowsPerSecond']:,} rows/s, peak {duck['peakRssMb']:.0f} MB",
                f"{recon['ratio']:.2f}",
            )
        )
    if "ledger" in results:
        ledger = results["ledger"]
        table.append(
            (
                "ledger",
                f"{ledger['postingsPerSecond']:,} postings/s"
                f" ({ledger['entriesPerSecond']:,} entries/s)",
                "",
                "",
            )
        )
    return table


def _end_to_end(e2e: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    ours, noop = e2e["paystream"], e2e["ceiling"]
    table = []
    table.append(
        (
            f"end to end, POST to CAPTURED ({ours['payments']:,} payments)",
            _rate(ours),
            f"Dramatiq no-op {_rate(noop)}",
            f"{e2e['ratio']:.2f}",
        )
    )
    if "cpuMsPerPayment" in ours:
        table.append(("  CPU per payment, by process", _cpu(ours["cpuMsPerPayment"]), "", ""))
    paced = e2e["latency"]
    table.append(
        (
            f"time to AUTHORIZED at {paced['offeredPerSecond']:.0f}/s",
            _latency(paced["paystream"], "authorizedP50Ms", "authorizedP99Ms"),
            "no-op round trip " + _latency(paced["ceiling"], "latencyP50Ms", "latencyP99Ms"),
            "",
        )
    )
    return table


def _idempotency(idempotency: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    replay, storm, bare = idempotency["replay"], idempotency["storm"], idempotency["ceiling"]
    statuses = ", ".join(f"{status}: {count}" for status, count in storm["statuses"].items())
    return [
        (
            "idempotent replays, c64",
            f"{_rate(replay)}; {_latency(replay)}",
            f"bare Starlette {_rate(bare)}; {_latency(bare)}",
            f"{idempotency['ratio']:.2f}",
        ),
        (
            f"storm: {storm['requests']:,} requests, one key",
            f"{storm['payments']} payment; {statuses}; {_latency(storm)}",
            "",
            "",
        ),
    ]


def print_results(console: Console, results: dict[str, Any]) -> None:
    machine = results["machine"]
    console.print(
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memoryGiB']} GiB, "
        f"{machine['os']}, Python {machine['python']}, PostgreSQL {machine['postgres']}, "
        f"Redis {machine['redis']}, {machine['loadGenerator']}, DuckDB {machine['duckdb']}"
    )
    table = Table("what", "paystream", "ceiling or peer", "ratio", title="paystream bench")
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    targets = Table("target", "measured", "met", title="targets")
    for target in results["targets"]:
        met = "[green]yes[/green]" if target["met"] else "[red]no[/red]"
        targets.add_row(target["target"], target["measured"], met)
    console.print(targets)


def markdown(results: dict[str, Any]) -> str:
    """The table as Markdown, for the README."""
    lines = ["| what | paystream | ceiling or peer | ratio |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows(results)]
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [
        f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |"
        for t in results["targets"]
    ]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    data, table, chart = folder / "results.json", folder / "results.md", folder / "chart.png"
    data.write_text(json.dumps(results, indent=2) + "\n")
    table.write_text(markdown(results))
    draw(results, chart)
    return [data, table, chart]


def draw(results: dict[str, Any], path: Path) -> None:
    """Four panels, paystream beside its ceiling or peer in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels: tuple[tuple[str, Callable[[Any, Any], None]], ...] = (
        ("ingress", _draw_ingress_rate),
        ("ingress", _draw_ingress_latency),
        ("endToEnd", _draw_end_to_end),
        ("reconciliation", _draw_reconciliation),
    )
    for ax, (section, panel) in zip([a for row in axes for a in row], panels, strict=True):
        if section in results:
            panel(ax, results[section])
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{section}: not in this run", ha="center", va="center")

    machine = results["machine"]
    figure.suptitle(
        f"paystream bench: {machine['cores']} cores, {machine['memoryGiB']} GiB, "
        f"Python {machine['python']}, PostgreSQL {machine['postgres']}"
        + (" (quick)" if results["quick"] else "")
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


_OURS, _CEILING = "#1f6feb", "#9aa4ae"


def _draw_ingress_rate(ax: Any, ingress: list[dict[str, Any]]) -> None:
    _side_by_side(
        ax,
        [f"c{row['concurrency']}" for row in ingress],
        0.27,
        ("bare Starlette", [r["ceiling"]["perSecond"] for r in ingress], _CEILING),
        ("paystream (pipeline paused)", [r["paystream"]["perSecond"] for r in ingress], _OURS),
        (
            "paystream (pipeline running)",
            [r["paystreamPipelineRunning"]["perSecond"] for r in ingress],
            "#79c0ff",
        ),
    )
    ax.set_title("ingress: POST /payments per second")


def _draw_ingress_latency(ax: Any, ingress: list[dict[str, Any]]) -> None:
    labels = [f"c{row['concurrency']}" for row in ingress]
    ax.bar(labels, [r["paystream"]["p99Ms"] for r in ingress], color=_OURS, label="paystream p99")
    ax.plot(
        labels,
        [r["ceiling"]["p99Ms"] for r in ingress],
        "o-",
        color=_CEILING,
        label="bare Starlette p99",
    )
    ax.axhline(25, color="#d1242f", linestyle="--", linewidth=1, label="target 25 ms (c32)")
    ax.set_title("ingress latency, ms")
    ax.legend(fontsize=8)


def _draw_end_to_end(ax: Any, e2e: dict[str, Any]) -> None:
    ax.bar(
        ["Dramatiq no-op", "paystream POST to CAPTURED"],
        [e2e["ceiling"]["perSecond"], e2e["paystream"]["perSecond"]],
        color=[_CEILING, _OURS],
    )
    ax.set_title(f"end to end per second (ratio {e2e['ratio']:.2f})")


def _draw_reconciliation(ax: Any, recon: list[dict[str, Any]]) -> None:
    _side_by_side(
        ax,
        [f"{r['rows']:,} rows" for r in recon],
        0.4,
        ("DuckDB", [r["duckdb"]["rowsPerSecond"] for r in recon], _CEILING),
        ("paystream reconcile", [r["paystream"]["rowsPerSecond"] for r in recon], _OURS),
    )
    ax.set_title("reconciliation, rows per second")


def _side_by_side(
    ax: Any, labels: list[str], width: float, *series: tuple[str, list[float], str]
) -> None:
    """A group of bars per label, one bar per series (name, values, colour),
    centred on the label, with a legend."""
    x = range(len(labels))
    for index, (name, values, color) in enumerate(series):
        offset = (index - (len(series) - 1) / 2) * width
        ax.bar([i + offset for i in x], values, width, label=name, color=color)
    ax.set_xticks(list(x), labels)
    ax.legend(fontsize=8)
