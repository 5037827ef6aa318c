"""The files that run paystream elsewhere stay valid and name real commands:
docker-compose.yml, the Procfile, the Dockerfile, and deploy/ (Prometheus
rules, the Grafana dashboard, the Kubernetes base)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib

import kubernetes_validate
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from typer.testing import CliRunner

from paystream.cli import app
from tests.support.deploy import GRAFANA
from tests.support.deploy import KUBERNETES
from tests.support.deploy import PROMETHEUS
from tests.support.deploy import ROOT
from tests.support.deploy import RULE_FILES
from tests.support.deploy import built_resources
from tests.support.deploy import containers
from tests.support.deploy import dashboard
from tests.support.deploy import kustomization
from tests.support.deploy import names_the_dashboard_queries
from tests.support.deploy import names_the_rules_query
from tests.support.deploy import rules

# The Kubernetes release whose schemas the manifests are held to.
KUBERNETES_VERSION = "1.33.0"


@pytest.mark.system_packages("docker-compose")
def test_docker_compose_config_is_valid() -> None:
    compose = shutil.which("docker-compose")
    assert compose, (
        "docker-compose is not installed (Debian package docker-compose; the suite installs it)"
    )
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "p",
        "PAYSTREAM_KEY_PEPPER": "k",
        "PAYSTREAM_PSP_API_KEY": "a",
    }
    result = subprocess.run(
        [compose, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.system_packages("docker-compose")
def test_docker_compose_refuses_to_run_without_its_secrets() -> None:
    compose = shutil.which("docker-compose")
    assert compose
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"POSTGRES_PASSWORD", "PAYSTREAM_KEY_PEPPER"}
    }
    result = subprocess.run(
        [compose, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def test_docker_compose_has_every_role() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "redis", "migrate", "gateway", "worker", "psp"} <= set(services)


def test_every_procfile_line_is_a_paystream_command_that_exists() -> None:
    runner = CliRunner()
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    assert {line.split(":", 1)[0] for line in lines} >= {"gateway", "worker", "psp-simulator"}
    for line in lines:
        command = shlex.split(re.sub(r"\$\{PORT:-(\d+)\}", r"\1", line.split(":", 1)[1]))
        assert command[0] == "paystream"
        result = runner.invoke(app, [command[1], "--help"])
        assert result.exit_code == 0, line


# --- deploy/: Prometheus rules, the Grafana dashboard, the Kubernetes base ----


@pytest.mark.system_packages("prometheus")
def test_promtool_passes_the_rules_and_the_example_configuration() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (Debian package prometheus)"
    rules = [str(PROMETHEUS / name) for name in RULE_FILES]
    checked = subprocess.run([promtool, "check", "rules", *rules], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_says_what_happened_and_points_at_a_runbook_section_that_exists() -> None:
    runbook = (PROMETHEUS / "RUNBOOK.md").read_text()
    sections = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^## (.+)$", runbook, flags=re.MULTILINE)
    }
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 7
    for alert in alerts:
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "deploy/prometheus/RUNBOOK.md" and anchor in sections, alert["alert"]
        assert alert["alert"] in runbook, f"{alert['alert']} is not named in its runbook"


def test_the_rules_and_the_dashboard_query_paystream_metrics_only() -> None:
    """Which of them a running stack exports is tests/e2e/test_observability.py's."""
    for name in names_the_rules_query() | names_the_dashboard_queries():
        assert name.startswith(("paystream_", "dramatiq_")), name


def test_the_dashboard_json_is_what_its_builder_makes() -> None:
    spec = importlib.util.spec_from_file_location("dashboard", GRAFANA / "dashboard.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert (GRAFANA / "paystream.json").read_text() == builder.rendered(), (
        "run: uv run python deploy/grafana/dashboard.py"
    )


def test_the_dashboard_loads_into_grafanas_dashboard_model_unchanged() -> None:
    """Grafana's Foundation SDK models the dashboard schema: a field it does
    not know, or one in the wrong place, is dropped on the way through."""
    written = dashboard()
    loaded = Dashboard.from_json(written)
    assert json.loads(json.dumps(loaded, cls=JSONEncoder)) == written
    assert loaded.title and loaded.uid and loaded.panels
    ids = [panel.id_val for panel in loaded.panels]
    assert len(set(ids)) == len(ids)
    for panel in written["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and all(refs) and len(set(refs)) == len(refs), panel["title"]


def test_the_dashboard_covers_what_operators_watch() -> None:
    queried = names_the_dashboard_queries()
    for wanted in (
        "paystream_http_request_duration_seconds_bucket",
        "paystream_payment_transitions_total",
        "paystream_payment_time_to_authorized_seconds_bucket",
        "paystream_queue_depth",
        "paystream_outbox_lag_seconds",
        "paystream_webhook_delivery_failures_total",
        "paystream_webhook_dead_letters_total",
        "paystream_reconciliation_lines_total",
        "paystream_psp_circuit_open",
        "paystream_audit_seal_lag_seconds",
    ):
        assert wanted in queried, wanted


def test_every_kubernetes_manifest_is_valid_against_the_kubernetes_schemas_strictly() -> None:
    for resource in built_resources():
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_and_only_manifests_that_exist() -> None:
    listed = kustomization()["resources"]
    assert sorted(listed) == sorted(
        path.name for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml"
    )
    images = {image["name"] for image in kustomization()["images"]}
    for resource in built_resources():
        for container in containers(resource):
            assert container["image"].startswith("paystream:"), container["name"]
    assert images == {"paystream"}


def test_there_is_a_deployment_for_every_procfile_process_with_its_command() -> None:
    procfile = {
        name: shlex.split(command.replace("${PORT:-8000}", "8000"))[1:]
        for name, command in (
            line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
        )
    }
    deployments = {
        resource["metadata"]["name"].removeprefix("paystream-"): containers(resource)[0]["args"]
        for resource in built_resources()
        if resource["kind"] == "Deployment"
    }
    # The simulator is for local runs and tests; production talks to a PSP.
    assert set(deployments) == set(procfile) - {"psp-simulator"}
    for name, args in deployments.items():
        assert args[0] == procfile[name][0], name
        assert CliRunner().invoke(app, [args[0], "--help"]).exit_code == 0
    (job,) = (r for r in built_resources() if r["kind"] == "Job")
    assert containers(job)[0]["args"] == ["migrate"]


def test_the_gateway_is_ready_on_readyz_and_alive_on_healthz_and_every_pod_is_probed() -> None:
    for resource in built_resources():
        if resource["kind"] != "Deployment":
            continue
        (container,) = containers(resource)
        assert "livenessProbe" in container, resource["metadata"]["name"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
    gateway = next(
        r
        for r in built_resources()
        if r["metadata"]["name"] == "paystream-gateway" and r["kind"] == "Deployment"
    )
    (container,) = containers(gateway)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_secrets_are_referenced_never_committed_and_the_databases_are_external() -> None:
    kinds = {resource["kind"] for resource in built_resources()}
    assert "Secret" not in kinds and "StatefulSet" not in kinds
    text = "\n".join(path.read_text() for path in KUBERNETES.glob("*.yaml"))
    assert "postgresql://" not in text and "redis://" not in text
    external = {
        r["metadata"]["name"]: r["spec"]
        for r in built_resources()
        if r["kind"] == "Service" and r["spec"].get("type") == "ExternalName"
    }
    assert set(external) == {"paystream-postgres", "paystream-redis"}
    for resource in built_resources():
        for container in containers(resource):
            assert not any(part in container["image"] for part in ("postgres", "redis")), container[
                "image"
            ]
            secret_values = {
                env["name"]: env["valueFrom"]["secretKeyRef"]["name"]
                for env in container.get("env", [])
                if "valueFrom" in env
            }
            assert secret_values["DATABASE_URL"] == "paystream-secrets"
            assert all(
                "value" not in env
                for env in container.get("env", [])
                if env["name"] in secret_values
            )


def test_autoscalers_and_disruption_budgets_point_at_deployments_of_the_base() -> None:
    resources = built_resources()
    pods = {
        r["metadata"]["name"]: r["spec"]["template"]["metadata"]["labels"]
        for r in resources
        if r["kind"] == "Deployment"
    }
    scaled = {
        r["spec"]["scaleTargetRef"]["name"]
        for r in resources
        if r["kind"] == "HorizontalPodAutoscaler"
    }
    assert scaled == {"paystream-gateway", "paystream-worker"}
    budgets = [r for r in resources if r["kind"] == "PodDisruptionBudget"]
    assert len(budgets) == len(pods)
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pods.values())


def test_the_image_holds_every_package_of_the_wheel() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]["packages"]
    for package in packages:
        assert f"COPY {package} {package}" in dockerfile, package
