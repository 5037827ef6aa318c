"""The imports run one way (DESIGN.md §1): each package imports only the
packages below it, nothing but the tooling and the tests imports the root,
and nothing imports the tooling but the tooling and the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What each package may import of ours, besides itself.
MAY_IMPORT = {
    "payments": set(),
    "telemetry": {"payments"},
    "psp": {"payments", "telemetry"},
    "store": {"payments", "telemetry"},
    "gateway": {"payments", "telemetry", "psp", "store"},
    "actors": {"payments", "telemetry", "psp", "store"},
    "paystream": {"payments", "telemetry", "psp", "store", "gateway", "actors"},
    "stack": {"payments", "telemetry", "psp", "store", "gateway", "actors", "paystream"},
    "drill": {"payments", "telemetry", "psp", "store", "gateway", "actors", "paystream", "stack"},
    "bench": {
        *("payments", "telemetry", "psp", "store", "gateway", "actors", "paystream"),
        *("stack", "drill"),
    },
}


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages that a module imports, at any depth in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(MAY_IMPORT)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            imported_packages(path) - MAY_IMPORT[package] - {package}
        )
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {path: names for path, names in wrong.items() if names} == {}
