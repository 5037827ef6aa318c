"""Key management: only hashes kept, roles enforced, a revoked key dead at once."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import PEPPER, Merchant, new_merchant
from tests.support.gateway import Gateway

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


def test_the_cli_creates_lists_rotates_and_revokes_keys(
    database_url: str, db: psycopg.Connection
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "PAYSTREAM_KEY_PEPPER": PEPPER.decode()}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "paystream", "keys", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    import json

    created = json.loads(cli("create", "--merchant", "mer_cli", "--roles", "payments:read"))
    rotated = json.loads(cli("rotate", created["keyId"], "--merchant", "mer_cli"))
    listed = [json.loads(line) for line in cli("list", "--merchant", "mer_cli").splitlines()]
    assert {k["keyId"] for k in listed} == {created["keyId"], rotated["keyId"]}
    revoked = json.loads(cli("revoke", rotated["keyId"], "--merchant", "mer_cli"))
    assert revoked["revokedAt"]
    actors = db.execute(
        "SELECT DISTINCT actor FROM audit_log WHERE merchant_id = 'mer_cli'"
    ).fetchall()
    assert actors == [("system:cli",)]
