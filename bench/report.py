"""A bench run's results: the table printed, the JSON written, the chart drawn."""

from __future__ import annotations

import json
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
    for row in results["ingress"]:
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
    e2e = results["endToEnd"]
    ours, noop = e2e["paystream"], e2e["ceiling"]
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
    replay, storm = results["idempotency"]["replay"], results["idempotency"]["storm"]
    table.append(("idempotent replays, c64", f"{_rate(replay)}; {_latency(replay)}", "", ""))
    statuses = ", ".join(f"{status}: {count}" for status, count in storm["statuses"].items())
    table.append(
        (
            f"storm: {storm['requests']:,} requests, one key",
            f"{storm['payments']} payment; {statuses}; {_latency(storm)}",
            "",
            "",
        )
    )
    for recon in results["reconciliation"]:
        ours, duck = recon["paystream"], recon["duckdb"]
        table.append(
            (
                f"reconciliation, {recon['rows']:,} rows",
                f"{ours['rowsPerSecond']:,} rows/s, peak {ours['peakRssMb']:.0f} MB",
                f"DuckDB {duck['rowsPerSecond']:,} rows/s, peak {duck['peakRssMb']:.0f} MB",
                f"{recon['ratio']:.2f}",
            )
        )
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

    ours_color, ceiling_color = "#1f6feb", "#9aa4ae"
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    ingress = results["ingress"]
    labels = [f"c{row['concurrency']}" for row in ingress]
    ax = axes[0][0]
    _side_by_side(
        ax,
        labels,
        0.27,
        ("bare Starlette", [r["ceiling"]["perSecond"] for r in ingress], ceiling_color),
        ("paystream (pipeline paused)", [r["paystream"]["perSecond"] for r in ingress], ours_color),
        (
            "paystream (pipeline running)",
            [r["paystreamPipelineRunning"]["perSecond"] for r in ingress],
            "#79c0ff",
        ),
    )
    ax.set_title("ingress: POST /payments per second")

    ax = axes[0][1]
    ax.bar(
        labels, [r["paystream"]["p99Ms"] for r in ingress], color=ours_color, label="paystream p99"
    )
    ax.plot(
        labels,
        [r["ceiling"]["p99Ms"] for r in ingress],
        "o-",
        color=ceiling_color,
        label="bare Starlette p99",
    )
    ax.axhline(25, color="#d1242f", linestyle="--", linewidth=1, label="target 25 ms (c32)")
    ax.set_title("ingress latency, ms")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    e2e = results["endToEnd"]
    ax.bar(
        ["Dramatiq no-op", "paystream POST to CAPTURED"],
        [e2e["ceiling"]["perSecond"], e2e["paystream"]["perSecond"]],
        color=[ceiling_color, ours_color],
    )
    ax.set_title(f"end to end per second (ratio {e2e['ratio']:.2f})")

    ax = axes[1][1]
    recon = results["reconciliation"]
    _side_by_side(
        ax,
        [f"{r['rows']:,} rows" for r in recon],
        0.4,
        ("DuckDB", [r["duckdb"]["rowsPerSecond"] for r in recon], ceiling_color),
        ("paystream reconcile", [r["paystream"]["rowsPerSecond"] for r in recon], ours_color),
    )
    ax.set_title("reconciliation, rows per second")

    machine = results["machine"]
    figure.suptitle(
        f"paystream bench: {machine['cores']} cores, {machine['memoryGiB']} GiB, "
        f"Python {machine['python']}, PostgreSQL {machine['postgres']}"
        + (" (quick)" if results["quick"] else "")
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
