"""The files that run paystream elsewhere stay valid and name real commands."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from paystream.cli import app

ROOT = Path(__file__).resolve().parents[2]


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
