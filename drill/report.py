"""The drill's table: a line per invariant, with the counts behind it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from drill.checks import Check
from drill.runner import DrillReport


def print_report(console: Console, report: DrillReport) -> None:
    options = report.options
    psp_faults = options.faults
    faults = [
        f"{psp_faults.timeout_rate:.0%} timeouts",
        f"{psp_faults.lost_response_rate:.0%} lost responses",
        f"{psp_faults.error_rate:.0%} errors",
    ]
    # Only the simulator tells outcomes by webhook alone and mangles its
    # webhooks; the Stripe proxy faults the API's answers.
    if options.psp == "simulator":
        faults += [
            f"{psp_faults.webhook_only_rate:.0%} told by webhook only",
            f"webhooks {psp_faults.webhook_duplicate_rate:.0%} duplicated"
            f" and {psp_faults.webhook_reorder_rate:.0%} reordered",
        ]
    console.print(
        f"drill on {options.psp}: {options.payments} payments, seed {options.seed}, "
        f"PSP faults: {', '.join(faults)}; the merchant endpoint fails "
        f"{options.endpoint_failures} tries per event; {report.seconds:.0f} s"
    )
    console.print(
        "faults injected: "
        + ", ".join(f"{name} {count}" for name, count in report.injected.items())
    )
    print_checks(console, report.checks)


def print_checks(console: Console, checks: list[Check], title: str | None = None) -> None:
    """A line per invariant with the counts behind it, then every violation
    and the verdict."""
    table = Table("invariant", "result", "counts", title=title)
    for check in checks:
        counts = ", ".join(f"{name} {value}" for name, value in check.counts.items())
        result = (
            "[green]ok[/green]"
            if check.passed
            else f"[red]{len(check.failures)} violation(s)[/red]"
        )
        table.add_row(check.name, result, counts)
    console.print(table)
    for check in checks:
        for failure in check.failures:
            console.print(f"[red]✗[/red] {check.name}: {failure}")
    passed = all(check.passed for check in checks)
    console.print("[green]all invariants hold[/green]" if passed else "[red]violations found[/red]")
