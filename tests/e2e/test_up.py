"""`paystream up` itself: what it writes, what it reuses, how it stops."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psycopg

from stack.ports import accepts_connections
from stack.ports import wait_until
from stack.postgres_binaries import embedded_bindir
from stack.postgres_binaries import major_version
from tests.support.servers import Servers
from tests.support.servers import make_root
from tests.support.stack import remove
from tests.support.stack import start_stack


def pay(gateway: str, api_key: str) -> dict[str, object]:
    response = httpx.post(
        f"{gateway}/payments",
        json={
            "orderId": uuid.uuid4().hex,
            "amount": 500,
            "currency": "EUR",
            "methodToken": "tok_visa",
        },
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_second_up_on_the_same_folder_finds_its_data_and_key_and_ctrl_c_stops_everything() -> (
    None
):
    root = make_root("paystream-up-")
    try:
        first = start_stack(root)
        info = json.loads((root / "stack.json").read_text())
        assert set(info) >= {
            "gatewayUrl",
            "simulatorUrl",
            "apiKey",
            "operatorKey",
            "databaseUrl",
            "redisUrl",
        }
        assert oct((root / "stack.json").stat().st_mode & 0o777) == "0o600"
        payment = pay(first.gateway, first.info["apiKey"])
        assert first.stop() == 0
        for port in first.ports.values():
            assert not accepts_connections(port), f"port {port} still open after Ctrl-C"

        second = start_stack(root)
        try:
            assert second.info["apiKey"] == first.info["apiKey"]
            assert second.info["operatorKey"] == first.info["operatorKey"]
            runs = httpx.get(f"{second.gateway}/reconciliations", headers=second.operator_headers())
            assert runs.status_code == 200
            found = httpx.get(
                f"{second.gateway}/payments/{payment['paymentId']}", headers=second.headers()
            )
            assert found.status_code == 200
            book = httpx.get(f"{second.simulator}/_book").json()
            assert payment["paymentId"] in {c["reference"] for c in book["charges"]}
        finally:
            assert second.stop() == 0
    finally:
        remove(root)


def test_with_database_url_and_redis_url_set_up_uses_those_servers(servers: Servers) -> None:
    servers.postgres.ensure_database("paystream_external")
    database_url = servers.postgres.url("paystream_external")
    root = make_root("paystream-external-")
    env = {"DATABASE_URL": database_url, "REDIS_URL": servers.redis.url(3)}
    try:
        stack = start_stack(root, env=env)
        try:
            assert stack.info["databaseUrl"] == database_url
            assert not (root / "postgres").exists() and not (root / "redis").exists()
            payment = pay(stack.gateway, stack.info["apiKey"])
            assert (
                stack.wait_for_status(str(payment["paymentId"]), {"CAPTURED"})["status"]
                == "CAPTURED"
            )
        finally:
            assert stack.stop() == 0
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT status FROM payments WHERE id = %s", (payment["paymentId"],))
            assert row.fetchone() == ("CAPTURED",)
    finally:
        remove(root)
        os.environ.pop("DATABASE_URL", None)


def test_up_with_a_psp_and_a_routing_table_prints_the_table_and_names_each_psp_in_stack_json() -> (
    None
):
    root = make_root("paystream-up-psps-")
    routing = root / "routing.json"
    table = {"default": "simulator", "routes": [{"psp": "simulator", "currency": "EUR"}]}
    routing.write_text(json.dumps(table))
    try:
        stack = start_stack(root, options=("--psp", "simulator", "--routing", str(routing)))
        try:
            info = json.loads((root / "stack.json").read_text())
            assert info["psps"] == {"simulator": info["simulatorUrl"]}
            assert info["routing"] == table
            banner = wait_until(
                lambda: (root / "up.out").read_text(),
                holds=lambda text: "paystream is up" in text,
                timeout=10,
                what="the start-up banner",
            )
            assert re.search(r"psp simulator\s+" + re.escape(info["simulatorUrl"]), banner)
            assert re.search(r"routing\s+currency EUR\s+-> simulator", banner)
            assert re.search(r"\n\s+anything else\s+-> simulator", banner)
            assert pay(stack.gateway, stack.info["apiKey"])["psp"] == "simulator"
        finally:
            assert stack.stop() == 0
    finally:
        remove(root)


def test_up_refuses_a_psp_it_cannot_run_before_starting_anything() -> None:
    root = make_root("paystream-up-refused-")
    try:
        refused = subprocess.run(
            [sys.executable, "-m", "paystream", "up", "--data-dir", str(root), "--psp", "adyen"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1
        said = " ".join((refused.stdout + refused.stderr).split())
        assert (
            "--psp adyen: no PSP of that name can run here (these can: simulator, stripe)" in said
        )
        assert not (root / "stack.json").exists() and not (root / "logs").exists()
    finally:
        remove(root)


def path_without_postgres(folder: Path) -> str:
    """A PATH with every program of the original but PostgreSQL's: a folder
    of links to them, as on a machine with no Postgres package installed."""
    postgres_programs = {path.name for path in embedded_bindir().iterdir()}
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for program in Path(directory).glob("*") if Path(directory).is_dir() else []:
            link = folder / program.name
            if program.name not in postgres_programs and not link.exists():
                link.symlink_to(program)
    return str(folder)


def test_up_on_a_machine_whose_path_shows_no_postgres_runs_the_embedded_server_and_takes_a_payment() -> (
    None
):
    root = make_root("paystream-up-no-postgres-")
    try:
        path = path_without_postgres(root / "bin")
        assert shutil.which("pg_config", path=path) is None
        assert shutil.which("initdb", path=path) is None
        env = {"PATH": path, "PAYSTREAM_POSTGRES_BIN": ""}
        stack = start_stack(root, env=env)
        try:
            with psycopg.connect(stack.info["databaseUrl"]) as conn:
                version = conn.execute("SHOW server_version_num").fetchone()
            assert version is not None and int(version[0]) // 10000 == major_version(
                embedded_bindir()
            )
            payment = pay(stack.gateway, stack.info["apiKey"])
            assert stack.wait_for_status(str(payment["paymentId"]), {"CAPTURED"})
            banner = (root / "up.out").read_text()
            assert re.search(r"postgres\s+postgresql://.*\(PostgreSQL 18, embedded\)", banner)
        finally:
            assert stack.stop() == 0
    finally:
        remove(root)
