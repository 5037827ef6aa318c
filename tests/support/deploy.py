"""Reading the files under deploy/: the metrics the Prometheus rules and the
Grafana dashboard query, and the Kubernetes base as `kustomize build` would
put it together."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
KUBERNETES = ROOT / "deploy" / "kubernetes"
RULE_FILES = ("alerts.yml", "recording.yml")

# Grafana's range variables, given a value so the query parses as PromQL.
_GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b")


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects, by name."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(_GRAFANA_RANGES.sub("5m", expr)), visit)
    return names


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for name in RULE_FILES
        for group in yaml.safe_load((PROMETHEUS / name).read_text())["groups"]
        for rule in group["rules"]
    ]


def names_the_rules_query() -> set[str]:
    """What the rules select, less the series they record themselves."""
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    return set().union(*(metric_names(rule["expr"]) for rule in rules())) - recorded


def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "paystream.json").read_text())  # type: ignore[no-any-return]


def dashboard_queries() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


def names_the_dashboard_queries() -> set[str]:
    return set().union(*(metric_names(expr) for expr in dashboard_queries()))


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())  # type: ignore[no-any-return]


def built_resources() -> list[dict[str, Any]]:
    """The base's resources with its `images` and `labels` applied: what
    `kustomize build` makes of it (the only transformations it uses)."""
    base = kustomization()
    images = {image["name"]: image for image in base.get("images", [])}
    labels: dict[str, str] = {}
    for entry in base.get("labels", []):
        labels.update(entry["pairs"])
    built = []
    for listed in base["resources"]:
        for resource in yaml.safe_load_all((KUBERNETES / listed).read_text()):
            resource["metadata"].setdefault("labels", {}).update(labels)
            for container in containers(resource):
                image = images.get(container["image"])
                if image is not None:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
            built.append(resource)
    return built


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment's or a Job's pods."""
    if resource["kind"] not in {"Deployment", "Job"}:
        return []
    return resource["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]
