"""Key management: only hashes kept, roles enforced, a revoked key dead at once,
and no merchant key holding or granting an operator's role, by any path."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from gateway.auth import MERCHANT_ROLES
from gateway.types import GatewayConfig
from tests.conftest import PEPPER
from tests.conftest import Merchant
from tests.conftest import new_merchant
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.anyio


async def create_key(gateway: Gateway, admin: Merchant, roles: list[str]):  # type: ignore[no-untyped-def]
    return await gateway.client.post(
        "/api-keys",
        json={"roles": roles, "description": "ci"},
        headers=gateway.headers(admin.api_key),
    )


async def works(gateway: Gateway, key: str) -> int:
    return (await gateway.client.get("/payments", headers=gateway.headers(key))).status_code


async def test_a_key_is_shown_once_and_only_its_hash_is_stored(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    created = await create_key(gateway, merchant, ["payments:read"])
    assert created.status_code == 201
    key = created.json()["apiKey"]
    assert await works(gateway, key) == 200
    listed = (
        await gateway.client.get("/api-keys", headers=gateway.headers(merchant.api_key))
    ).json()
    assert all("apiKey" not in k for k in listed["data"])
    stored = db.execute(
        "SELECT key_hash, key_prefix FROM api_keys WHERE id = %s", (created.json()["keyId"],)
    ).fetchone()
    assert stored is not None and key.encode() not in bytes(stored[0]) and key.startswith(stored[1])
    dump = db.execute("SELECT string_agg(t::text, ',') FROM api_keys t").fetchone()
    assert key not in str(dump)


async def test_a_revoked_key_stops_working_at_once(gateway: Gateway, merchant: Merchant) -> None:
    created = (await create_key(gateway, merchant, ["payments:read"])).json()
    assert await works(gateway, created["apiKey"]) == 200
    revoked = await gateway.client.delete(
        f"/api-keys/{created['keyId']}", headers=gateway.headers(merchant.api_key)
    )
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    assert await works(gateway, created["apiKey"]) == 401


async def test_a_key_revoked_through_one_gateway_is_refused_at_once_by_another_that_had_it_cached(
    gateway: Gateway, gateway_config: GatewayConfig, merchant: Merchant
) -> None:
    created = (await create_key(gateway, merchant, ["payments:read"])).json()
    async with running_gateway(gateway_config) as other:
        assert await works(other, created["apiKey"]) == 200
        assert await works(other, created["apiKey"]) == 200
        assert other.services.principals.holds(created["apiKey"])

        revoked = await gateway.client.delete(
            f"/api-keys/{created['keyId']}", headers=gateway.headers(merchant.api_key)
        )
        assert revoked.status_code == 200

        assert await works(other, created["apiKey"]) == 401
        assert not other.services.principals.holds(created["apiKey"])


async def test_a_key_revoked_from_the_command_line_is_refused_at_once_by_a_gateway_that_had_it_cached(
    gateway: Gateway, merchant: Merchant, database_url: str, redis_url: str
) -> None:
    created = (await create_key(gateway, merchant, ["payments:read"])).json()
    assert await works(gateway, created["apiKey"]) == 200
    assert gateway.services.principals.holds(created["apiKey"])

    cli(
        database_url,
        "keys",
        "revoke",
        created["keyId"],
        "--merchant",
        merchant.id,
        env={"REDIS_URL": redis_url},
    )

    assert await works(gateway, created["apiKey"]) == 401


async def test_the_key_cache_answers_only_for_the_key_it_found_and_its_merchant(
    gateway: Gateway, database_url: str
) -> None:
    first, second = new_merchant(database_url), new_merchant(database_url)
    paid = await gateway.create_payment(first.api_key)
    assert paid.status_code == 201
    path = f"/payments/{paid.json()['paymentId']}"
    for merchant in (first, second):  # both keys cached
        assert await works(gateway, merchant.api_key) == 200
        assert gateway.services.principals.holds(merchant.api_key)

    theirs = await gateway.client.get(path, headers=gateway.headers(second.api_key))
    ours = await gateway.client.get(path, headers=gateway.headers(first.api_key))
    assert (theirs.status_code, ours.status_code) == (404, 200)
    assert await works(gateway, first.api_key[:-1]) == 401


async def test_a_rotation_gives_a_new_key_and_ends_the_old_one_after_its_grace(
    gateway: Gateway, merchant: Merchant
) -> None:
    first = (await create_key(gateway, merchant, ["payments:read"])).json()
    headers = gateway.headers(merchant.api_key)
    graceful = (
        await gateway.client.post(
            f"/api-keys/{first['keyId']}/rotate", json={"graceSeconds": 3600}, headers=headers
        )
    ).json()
    assert graceful["replaces"] == first["keyId"] and graceful["roles"] == ["payments:read"]
    assert (
        await works(gateway, first["apiKey"]) == 200
        and await works(gateway, graceful["apiKey"]) == 200
    )
    immediate = (
        await gateway.client.post(f"/api-keys/{graceful['keyId']}/rotate", headers=headers)
    ).json()
    assert (
        await works(gateway, graceful["apiKey"]) == 401
        and await works(gateway, immediate["apiKey"]) == 200
    )


async def test_keys_need_the_admin_role_and_stay_with_their_merchant(
    gateway: Gateway, merchant: Merchant, database_url: str
) -> None:
    created = (await create_key(gateway, merchant, ["payments:read"])).json()
    writer = new_merchant(database_url, roles=["payments:write", "payments:read"])
    assert (await create_key(gateway, writer, ["payments:read"])).status_code == 403
    other = new_merchant(database_url)
    headers = gateway.headers(other.api_key)
    assert (
        await gateway.client.delete(f"/api-keys/{created['keyId']}", headers=headers)
    ).status_code == 404
    assert (
        await gateway.client.post(f"/api-keys/{created['keyId']}/rotate", headers=headers)
    ).status_code == 404
    assert await works(gateway, created["apiKey"]) == 200


async def test_unknown_roles_are_refused(gateway: Gateway, merchant: Merchant) -> None:
    response = await create_key(gateway, merchant, ["superuser"])
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")


def keys_of(db: psycopg.Connection, merchant: Merchant) -> list[tuple[str, list[str]]]:
    rows = db.execute(
        "SELECT id, roles FROM api_keys WHERE merchant_id = %s ORDER BY id", (merchant.id,)
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


async def test_a_merchant_admin_cannot_grant_the_reconciliation_role(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    before = keys_of(db, merchant)
    response = await create_key(gateway, merchant, ["payments:read", "reconciliation"])
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    [error] = response.json()["errors"]
    assert error["pointer"] == "/roles/1" and "operator's role" in error["detail"]
    assert keys_of(db, merchant) == before
    assert (await create_key(gateway, merchant, ["ledger:read"])).status_code == 201


async def test_a_rotated_merchant_key_carries_only_merchant_roles(
    gateway: Gateway, merchant: Merchant, db: psycopg.Connection
) -> None:
    [(key_id, _)] = keys_of(db, merchant)
    rotated = await gateway.client.post(
        f"/api-keys/{key_id}/rotate", headers=gateway.headers(merchant.api_key)
    )
    assert rotated.status_code == 201
    assert set(rotated.json()["roles"]) == set(MERCHANT_ROLES)
    assert "reconciliation" not in rotated.json()["roles"]
    refused = await gateway.client.post(
        "/reconciliations",
        json={"pspBatch": "2026-11-24"},
        headers=gateway.headers(rotated.json()["apiKey"]),
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_role")


def test_the_database_refuses_a_merchant_key_with_an_operators_role(
    db: psycopg.Connection, merchant: Merchant
) -> None:
    """Under the API's and the CLI's checks: whatever code runs, no such row."""
    insert = (
        "INSERT INTO api_keys (id, merchant_id, operator_id, key_hash, key_prefix, roles)"
        " VALUES (%s, %s, %s, %s, 'sk_x', %s)"
    )
    operator_id = db.execute(
        "INSERT INTO operators (id, name) VALUES ('opr_check', 'x')"
        " ON CONFLICT (id) DO UPDATE SET name = 'x' RETURNING id"
    ).fetchone()[0]  # type: ignore[index]
    refused = [
        ("key_m1", merchant.id, None, ["payments:read", "reconciliation"]),
        ("key_m2", None, operator_id, ["payments:write"]),
        ("key_m3", merchant.id, operator_id, ["admin"]),
        ("key_m4", None, None, ["admin"]),
    ]
    for key_id, merchant_id, owner, roles in refused:
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(insert, (key_id, merchant_id, owner, key_id.encode(), roles))
    assert len(keys_of(db, merchant)) == 1


def cli(
    database_url: str, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paystream", *args],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "PAYSTREAM_KEY_PEPPER": PEPPER.decode(),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        check=check,
    )


def test_the_cli_refuses_a_merchant_key_with_an_operators_role(
    database_url: str, db: psycopg.Connection
) -> None:
    refused = cli(
        database_url,
        "keys",
        "create",
        "--merchant",
        "mer_cli_escalation",
        "--roles",
        "payments:read,reconciliation",
        check=False,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert "paystream operators create" in " ".join(refused.stderr.split())
    kept = db.execute("SELECT count(*) FROM api_keys WHERE merchant_id = 'mer_cli_escalation'")
    assert kept.fetchone() == (0,)


def test_the_cli_creates_lists_rotates_and_revokes_keys(
    database_url: str, db: psycopg.Connection
) -> None:
    def keys(*args: str) -> str:
        return cli(database_url, "keys", *args).stdout

    import json

    created = json.loads(keys("create", "--merchant", "mer_cli", "--roles", "payments:read"))
    rotated = json.loads(keys("rotate", created["keyId"], "--merchant", "mer_cli"))
    listed = [json.loads(line) for line in keys("list", "--merchant", "mer_cli").splitlines()]
    assert {k["keyId"] for k in listed} == {created["keyId"], rotated["keyId"]}
    revoked = json.loads(keys("revoke", rotated["keyId"], "--merchant", "mer_cli"))
    assert revoked["revokedAt"]
    actors = db.execute(
        "SELECT DISTINCT actor FROM audit_log WHERE merchant_id = 'mer_cli'"
    ).fetchall()
    assert actors == [("system:cli",)]
