"""Platform operators: made from the command line or by another operator,
never by a merchant; their keys reconcile, and are audited and revoked as
merchants' keys are."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.conftest import Merchant
from tests.conftest import Operator
from tests.conftest import new_operator
from tests.integration.test_api_keys import cli
from tests.support.gateway import Gateway

pytestmark = pytest.mark.anyio


async def reconciles(gateway: Gateway, key: str) -> int:
    return (await gateway.client.get("/reconciliations", headers=gateway.headers(key))).status_code


async def test_an_operator_admin_makes_an_operator_whose_key_reconciles_and_is_shown_once(
    gateway: Gateway, operator: Operator, db: psycopg.Connection
) -> None:
    headers = gateway.headers(operator.api_key)
    made = await gateway.client.post(
        "/operators", json={"name": "Finance ops", "roles": ["reconciliation"]}, headers=headers
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["operatorId"].startswith("opr_") and body["key"]["roles"] == ["reconciliation"]
    assert await reconciles(gateway, body["key"]["apiKey"]) == 200
    listed = (await gateway.client.get("/operators", headers=headers)).json()["data"]
    [found] = [o for o in listed if o["operatorId"] == body["operatorId"]]
    assert [k["keyId"] for k in found["keys"]] == [body["key"]["keyId"]]
    assert "apiKey" not in json.dumps(listed)
    audited = db.execute(
        "SELECT action, actor, merchant_id FROM audit_log WHERE object_id IN (%s, %s) ORDER BY seq",
        (body["operatorId"], body["key"]["keyId"]),
    ).fetchall()
    assert audited == [
        ("operator.created", operator.key_id, None),
        ("api_key.created", operator.key_id, None),
    ]


async def test_a_revoked_operator_key_stops_at_once(
    gateway: Gateway, operator: Operator, database_url: str
) -> None:
    colleague = new_operator(database_url, roles=["reconciliation"])
    assert await reconciles(gateway, colleague.api_key) == 200
    revoked = await gateway.client.delete(
        f"/operator-keys/{colleague.key_id}", headers=gateway.headers(operator.api_key)
    )
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    assert await reconciles(gateway, colleague.api_key) == 401
    again = await gateway.client.delete(
        f"/operator-keys/{colleague.key_id}", headers=gateway.headers(operator.api_key)
    )
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")


async def test_an_operator_is_made_with_operator_roles_only_and_a_merchant_key_is_not_one(
    gateway: Gateway, operator: Operator, merchant: Merchant, db: psycopg.Connection
) -> None:
    headers = gateway.headers(operator.api_key)
    before = db.execute("SELECT count(*) FROM operators").fetchone()
    wrong = await gateway.client.post(
        "/operators", json={"name": "x", "roles": ["payments:write"]}, headers=headers
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "validation_error")
    assert wrong.json()["errors"][0]["pointer"] == "/roles/0"
    merchant_key = db.execute(
        "SELECT id FROM api_keys WHERE merchant_id = %s", (merchant.id,)
    ).fetchone()
    assert merchant_key is not None
    not_ours = await gateway.client.delete(f"/operator-keys/{merchant_key[0]}", headers=headers)
    assert not_ours.status_code == 404
    assert db.execute("SELECT count(*) FROM operators").fetchone() == before


def test_the_cli_creates_lists_and_revokes_operators(
    database_url: str, db: psycopg.Connection
) -> None:
    made = json.loads(
        cli(database_url, "operators", "create", "Night shift", "--roles", "reconciliation").stdout
    )
    assert made["operatorId"].startswith("opr_") and made["apiKey"].startswith("sk_")
    assert made["roles"] == ["reconciliation"] and "merchantId" not in made
    listed = [
        json.loads(line) for line in cli(database_url, "operators", "list").stdout.splitlines()
    ]
    [found] = [o for o in listed if o["operatorId"] == made["operatorId"]]
    assert [k["keyId"] for k in found["keys"]] == [made["keyId"]]
    revoked = json.loads(cli(database_url, "operators", "revoke", made["keyId"]).stdout)
    assert revoked["revokedAt"]
    refused = cli(database_url, "operators", "create", "x", "--roles", "payments:read", check=False)
    assert refused.returncode == 2
    actors = db.execute(
        "SELECT DISTINCT actor FROM audit_log WHERE object_id IN (%s, %s)",
        (made["operatorId"], made["keyId"]),
    ).fetchall()
    assert actors == [("system:cli",)]
