"""The command line beside `paystream up`: with no environment it talks to
the local stack in the data folder; the environment, when it names servers,
wins; with neither it says both ways to name one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from tests.conftest import PEPPER
from tests.support.stack import RunningStack

# What a fresh shell has: no DATABASE_URL, no PAYSTREAM_* settings.
CLEAN = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}


def paystream(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paystream", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def checkout_beside(stack: RunningStack, folder: Path) -> Path:
    """A working folder whose `.paystream` is the running stack's, as after
    `paystream up` in a checkout."""
    (folder / ".paystream").symlink_to(stack.root, target_is_directory=True)
    return folder


def test_right_after_up_the_cli_with_no_environment_makes_a_key_the_gateway_accepts(
    stack: RunningStack, tmp_path: Path
) -> None:
    checkout = checkout_beside(stack, tmp_path)
    made = paystream(
        "keys", "create", "--merchant", "other", "--roles", "payments:read", cwd=checkout, env=CLEAN
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["merchantId"] == "other" and key["roles"] == ["payments:read"]
    port = stack.ports["pg-port"]
    said = made.stderr.strip().splitlines()
    assert said == [
        f"paystream: talking to the local stack in {checkout / '.paystream'}"
        f" (postgres 127.0.0.1:{port}/paystream)"
    ]
    listed = httpx.get(
        f"{stack.gateway}/payments", headers={"Authorization": f"Bearer {key['apiKey']}"}
    )
    assert listed.status_code == 200 and listed.json()["data"] == []
    for command in (("migrate",), ("ledger", "verify"), ("operators", "list")):
        ran = paystream(*command, cwd=checkout, env=CLEAN)
        assert ran.returncode == 0, (command, ran.stderr)
        assert "talking to the local stack" in ran.stderr


def test_the_environment_naming_a_database_wins_over_the_data_folder(
    stack: RunningStack, database_url: str, tmp_path: Path
) -> None:
    env = {**CLEAN, "DATABASE_URL": database_url, "PAYSTREAM_KEY_PEPPER": PEPPER.decode()}
    made = paystream(
        "keys",
        "create",
        "--merchant",
        "mer_env_wins",
        "--roles",
        "payments:read",
        "--data-dir",
        str(stack.root),
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    assert "paystream: talking to DATABASE_URL (postgres 127.0.0.1:" in made.stderr
    key = json.loads(made.stdout)
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT merchant_id FROM api_keys WHERE id = %s", (key["keyId"],))
        assert found.fetchone() == ("mer_env_wins",)
    with psycopg.connect(stack.info["databaseUrl"]) as conn:
        found = conn.execute("SELECT 1 FROM api_keys WHERE id = %s", (key["keyId"],))
        assert found.fetchone() is None
    refused = httpx.get(
        f"{stack.gateway}/payments", headers={"Authorization": f"Bearer {key['apiKey']}"}
    )
    assert refused.status_code == 401


def test_with_no_stack_and_no_environment_the_cli_names_both_ways_to_one(tmp_path: Path) -> None:
    refused = paystream("keys", "list", "--merchant", "m", cwd=tmp_path, env=CLEAN)
    assert refused.returncode == 2 and refused.stdout == ""
    said = " ".join(refused.stderr.split())
    assert f"{tmp_path / '.paystream'} holds no stack's settings" in said
    assert "paystream up" in said and "--data-dir" in said
    assert "DATABASE_URL and PAYSTREAM_KEY_PEPPER" in said
